"""Every table the service owns, imported in one place so migrations see the whole schema."""

from cases.models import CaseLookup, CaseRecord
from infoopt.staff.accounts import StaffSession, StaffUser
from infoopt.staff.audit import AuditEntry
from knowledge_base.models import Article, ArticleRevision, BotFailure
from tickets.models import (
    Conversation,
    ConversationMessage,
    OutboxJob,
    PidOffice,
    Ticket,
    TicketCounter,
    TicketEvent,
    TicketMessage,
    VoiceCall,
)

__all__ = [
    "Article",
    "ArticleRevision",
    "AuditEntry",
    "BotFailure",
    "CaseLookup",
    "CaseRecord",
    "Conversation",
    "ConversationMessage",
    "OutboxJob",
    "PidOffice",
    "StaffSession",
    "StaffUser",
    "Ticket",
    "TicketCounter",
    "TicketEvent",
    "TicketMessage",
    "VoiceCall",
]
