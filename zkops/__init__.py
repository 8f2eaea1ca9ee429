"""zkops: a Java-free ZooKeeper distribution.

The server lives in :mod:`zkops.server` (standard library only); provisioning in
:mod:`zkops.provision`, classroom labs in :mod:`zkops.labs`, the zkCli-like shell in
:mod:`zkops.zkcli`.
"""

__version__ = "0.1.0"
