"""`python -m tuitune.core.engine.distributed ACCELERATE_LAUNCH_ARGS`: accelerate's launcher, with
the store of a single-machine job listening on the loopback interface only.

torchrun (under `accelerate launch`) hosts a TCPStore in the launcher process that every worker
connects to. torch binds that store to every interface (":: / 0.0.0.0"), whatever address it is
given, so on a shared server anyone on the network could reach it for the whole run. TCPStore
takes an already listening socket instead (`master_listen_fd`), and neither torchrun nor accelerate
offers a way to pass one, so with TUITUNE_LOOPBACK_STORE=1 (set by launch_plan for one machine)
the static rendezvous's TCPStore is given a socket bound to 127.0.0.1. gloo and NCCL keep their own
sockets on the loopback interface through GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME (also set there).
A job over several machines must listen on the network and is launched unchanged.
"""

from __future__ import annotations

import os
import socket
import sys

from tuitune.core.engine.launch_plan import LOOPBACK_STORE_ENV


def bind_store_to_loopback() -> None:
    """Make torchrun's static rendezvous host its store on a 127.0.0.1 socket."""
    from torch.distributed.elastic.rendezvous import static_tcp_rendezvous as static

    store_class = static.TCPStore

    def loopback_store(host_name, port, world_size=None, is_master=False, timeout=None, **kwargs):  # noqa: ANN001
        if is_master and "master_listen_fd" not in kwargs:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", int(port)))
            sock.listen(128)
            kwargs["master_listen_fd"] = sock.detach()  # the store owns the socket from here on
        return store_class(host_name, port, world_size, is_master, timeout, **kwargs)

    static.TCPStore = loopback_store


def main(argv: list[str] | None = None) -> int:
    from accelerate.commands.launch import launch_command, launch_command_parser

    if os.environ.get(LOOPBACK_STORE_ENV) == "1":
        bind_store_to_loopback()
    args = launch_command_parser().parse_args(sys.argv[1:] if argv is None else argv)
    launch_command(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
