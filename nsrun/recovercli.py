"""The ``recover`` verb: a new supervisor for pods whose supervisor is gone
(``nsrun.runtime.recover``)."""

from __future__ import annotations

from nsrun.errors import UsageError


def add_recover(sub) -> None:
    r = sub.add_parser("recover", help="re-attach a new supervisor to pods whose supervisor "
                       "is gone (crashed, killed, or the host rebooted)")
    r.add_argument("names", nargs="*", metavar="[pod] NAME")
    r.add_argument("--all", action="store_true",
                   help="every pod of the state root that has no supervisor (at boot: "
                        "nsrun-recover.service)")
    r.set_defaults(func=cmd_recover)


def cmd_recover(args) -> int:
    from nsrun.cliobjects import each, pod_names
    from nsrun.runtime import lifecycle, recover

    lifecycle.preflight()
    state = args.world.state
    if args.all == bool(args.names):
        raise UsageError("give pod names or --all (not both)")
    if args.all:
        for line in recover.recover_all(state):
            print(line, flush=True)
        return 0
    return each(pod_names(args.names), lambda name: recover.recover(state, name))
