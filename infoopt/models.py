"""Every table the service owns, imported in one place so migrations see the whole schema."""

from infoopt.staff.accounts import StaffSession, StaffUser
from knowledge_base.models import Article, ArticleRevision, AuditEntry, BotFailure
from tickets.models import Conversation, ConversationMessage, PidOffice

__all__ = [
    "Article",
    "ArticleRevision",
    "AuditEntry",
    "BotFailure",
    "Conversation",
    "ConversationMessage",
    "PidOffice",
    "StaffSession",
    "StaffUser",
]
