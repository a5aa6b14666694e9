from mmrskd.models.connectors.conv_bn_connector import ConvBNConnector
from mmrskd.models.connectors.multi_level_connector import MultiLevelConnector

__all__ = ['ConvBNConnector', 'MultiLevelConnector']
