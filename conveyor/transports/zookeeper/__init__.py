"""The ZooKeeper transport (``zookeeper://``) on kazoo: transport.py, its session, node
layout, queue view, batches and broadcast."""

from conveyor.transports.zookeeper.transport import ZooKeeperTransport

__all__ = ["ZooKeeperTransport"]
