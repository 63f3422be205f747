"""dsr-gateway: a GraphQL gateway for customer permissions and data-subject rights."""

__version__ = "0.1.0"
