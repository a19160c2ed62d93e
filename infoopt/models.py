"""Every table the service owns, imported in one place so migrations see the whole schema."""

from cases.models import CaseLookup, CaseRecord
from infoopt.staff.accounts import StaffSession, StaffUser
from infoopt.staff.audit import AuditEntry
from knowledge_base.models import Article, ArticleRevision, BotFailure, TopicChange
from tickets.models import (
    Conversation,
    ConversationMessage,
    OutboxJob,
    PidOffice,
    Subscription,
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
    "Subscription",
    "Ticket",
    "TicketCounter",
    "TicketEvent",
    "TicketMessage",
    "TopicChange",
    "VoiceCall",
]
