"""The OCI runtime face: ``nsrun-oci``, runc's command line over nsrun's spawn path.

Shims (podman's conmon, containerd-shim-runc-v2) drive it as they drive runc: ``create``,
``start``, ``state``, ``kill``, ``delete``, ``exec``, ``ps``, ``pause``/``resume``, ...
(``main`` has the table). Each verb lives in its own module and imports only what it needs:
a shim calls the runtime several times per container, so interpreter start and imports are
most of its cost. A container here and a pod's container share everything from the bundle
reader to the C child; they differ only in who decides when to start them.
"""
