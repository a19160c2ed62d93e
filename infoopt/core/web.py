"""Server-rendered pages: one Jinja2 environment over every package's templates, local static files."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

ROOT = Path(__file__).resolve().parents[2]
STATIC_DIR = Path(__file__).resolve().parent / "static"
TEMPLATE_DIRS = [
    ROOT / "infoopt" / "core" / "templates",
    ROOT / "knowledge_base" / "templates",
    ROOT / "bot" / "templates",
]

environment = Environment(
    loader=ChoiceLoader([FileSystemLoader(str(path)) for path in TEMPLATE_DIRS]),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates = Jinja2Templates(env=environment)
