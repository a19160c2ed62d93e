"""The supervisors' dashboard: tickets per PID per day, SLA breaches, first-response time, the bot's
containment rate and ratings, as charts drawn by a charting library served from this app."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/staff", include_in_schema=False)
