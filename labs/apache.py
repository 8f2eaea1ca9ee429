"""Apache ZooKeeper 3.8 as a lab server: Debian's ``zookeeper`` package run by a JVM.

The migration lab (lesson 12) starts its nodes as the Java server and moves them to zkops.
Debian's ``zookeeper.jar`` manifest leaves out a few jars the server needs at run time, so the
classpath names them. A leaf module: it knows where the jars are and how the command reads.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .model import LabError, Program

JAVA_DIR = Path("/usr/share/java")
EXTRA_JARS = ("netty-codec.jar", "netty-resolver.jar", "netty-transport-native-unix-common.jar",
              "servlet-api.jar", "slf4j-api.jar", "slf4j-simple.jar")
MAIN_CLASS = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
INSTALL_HINT = "on Debian or Ubuntu: apt-get install zookeeper default-jre-headless"


def missing() -> str | None:
    """What is missing to run Apache ZooKeeper here, or None when Java and the jars are installed."""
    lacks = []
    if shutil.which("java") is None:
        lacks.append("a Java runtime (`java` on PATH)")
    if not (JAVA_DIR / "zookeeper.jar").exists():
        lacks.append(f"Apache ZooKeeper's jars ({JAVA_DIR / 'zookeeper.jar'}, Debian's zookeeper package)")
    return None if not lacks else " and ".join(lacks)


def require() -> None:
    """Raise a LabError naming what to install when Apache ZooKeeper cannot run here."""
    lacks = missing()
    if lacks:
        raise LabError(f"Apache ZooKeeper nodes need {lacks}; {INSTALL_HINT}")


def classpath() -> str:
    jars = [JAVA_DIR / "zookeeper.jar", *(JAVA_DIR / j for j in EXTRA_JARS)]
    return ":".join(str(j) for j in jars if j.exists())


def command(zoo_cfg: Path) -> list[str]:
    """The Java server's command line for one node (no AdminServer: lab nodes share 127.0.0.1)."""
    return ["java", "-Xmx256m", "-Dzookeeper.admin.enableServer=false",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=info", "-cp", classpath(), MAIN_CLASS, str(zoo_cfg)]


def program_of(cmdline: str) -> Program:
    """Which program a server process runs, from its command line."""
    return Program.APACHE if MAIN_CLASS in cmdline else Program.ZKOPS
