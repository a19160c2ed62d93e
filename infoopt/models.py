"""Every table the service owns, imported in one place so migrations see the whole schema."""

from tickets.models import PidOffice

__all__ = ["PidOffice"]
