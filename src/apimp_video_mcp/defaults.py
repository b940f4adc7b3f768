"""Every default of the server in one place, each with its unit in its name.

Where a value is a judgement rather than a fact, the comment beside it says why it was chosen,
so that whoever changes it knows what they trade.
"""

from typing import Final

# APIMP's docs print only a placeholder host in their examples; this is the public API host
# the gateway's dashboard links to. It is an assumption, stated in the README: override it with
# APIMP_BASE_URL.
DEFAULT_BASE_URL: Final = "https://api.apimp.ai"

# --- HTTP to APIMP -------------------------------------------------------------------------
CONNECT_TIMEOUT_SECONDS: Final = 10.0
# A submit or status answer is small and quick; a slow one is a sick gateway, not a big body.
REQUEST_TIMEOUT_SECONDS: Final = 30.0
# Result videos are tens of MB at most; the read timeout applies per chunk, not to the whole file.
DOWNLOAD_READ_TIMEOUT_SECONDS: Final = 60.0
# A signed result link may redirect once or twice (to a CDN edge); a chain longer than this is not one.
DOWNLOAD_MAX_REDIRECTS: Final = 5
# Enough connections for many tasks polled at once without opening a socket per poll.
HTTP_MAX_CONNECTIONS: Final = 100
HTTP_MAX_KEEPALIVE_CONNECTIONS: Final = 20

# --- Retries of requests safe to repeat (status queries, uploads) ---------------------------
# Exponential backoff with jitter, as openai-python and replicate do; a status query is
# harmless to repeat, so we try harder than they do before giving up.
RETRY_MAX_ATTEMPTS: Final = 5
RETRY_BASE_DELAY_SECONDS: Final = 0.5
RETRY_MAX_DELAY_SECONDS: Final = 8.0
# A Retry-After longer than this is not waited for inside one call: the error tells the agent
# how long to wait instead (openai-python draws the same line at 120 s).
RETRY_AFTER_MAX_SECONDS: Final = 60.0

# --- Waiting ---------------------------------------------------------------------------------
# Claude Desktop abandons any tool call after about 60 s whatever progress it receives (its
# SDK's default request timeout), so the default wait must end, with a resumable answer, first.
DEFAULT_WAIT_TIMEOUT_SECONDS: Final = 50.0
# A caller may ask for longer (hosts that reset their timer on progress, such as Claude Code).
MAX_WAIT_TIMEOUT_SECONDS: Final = 3600.0
# The adaptive schedule polls after a third of the estimated time left, between these bounds. The
# floor is the interval once completion is near: a finish is noticed about floor/2 after it happens.
# The ceiling bounds how stale a long task's status gets (and how long a wrong estimate costs).
POLL_MIN_INTERVAL_SECONDS: Final = 1.0
POLL_MAX_INTERVAL_SECONDS: Final = 30.0
# Hosts that reset their timeout on progress need to hear from us well inside 10 s.
PROGRESS_INTERVAL_SECONDS: Final = 5.0
# A status answer takes well under a second; one pending this long means APIMP is not answering,
# and a wait that ends meanwhile says so (with the last status known).
STATUS_ANSWER_OVERDUE_SECONDS: Final = 5.0
# get_status and the player share one status request per task: an answer at most this old (from
# the request in flight, or the task's running poller) serves every caller. A crowd of concurrent
# calls costs one request, and nobody sees a status older than this.
STATUS_FRESH_SECONDS: Final = 1.0

# --- Downloads -------------------------------------------------------------------------------
# An 8 s 4k Veo clip is about 60 MB; anything far beyond that is not a video we asked for.
DOWNLOAD_MAX_BYTES: Final = 500 * 1024 * 1024
DOWNLOAD_CHUNK_BYTES: Final = 64 * 1024
# A whole download, however its bytes arrive: a body trickling one byte a minute never trips the
# per-read timeout, so only an overall deadline ends it. 500 MiB (the cap) at a slow 1 MiB/s takes
# about 8 minutes; a real 60 MB clip on any usable link, seconds.
DOWNLOAD_TIMEOUT_SECONDS: Final = 600.0
# Veo returns one video per task (up to 4 with sampleCount); a task listing more is not one of ours.
DOWNLOAD_MAX_FILES: Final = 4
# Four 4k clips are about 250 MB; 1 GiB per task leaves room, and bounds what one task can take.
DOWNLOAD_MAX_TASK_BYTES: Final = 1024 * 1024 * 1024

# --- Uploads of local reference images -------------------------------------------------------
# APIMP documents no upload limit. A first-frame image is a few MB at most (a 4k PNG screenshot is
# about 10 MB); 20 MiB admits that with room to spare, and refuses the wrong file (a scan, a RAW,
# a disk image renamed .png) before it is streamed off the machine.
UPLOAD_MAX_BYTES: Final = 20 * 1024 * 1024
# Each chunk is read in a worker thread: large enough that the thread hops cost nothing.
UPLOAD_CHUNK_BYTES: Final = 256 * 1024

# --- The task journal ------------------------------------------------------------------------
# How long a journal write waits for another process's write on the same file before failing.
JOURNAL_BUSY_TIMEOUT_SECONDS: Final = 5.0
# How long a submit waits for its principal's turn to be checked and journaled (the submit lock,
# held across every process on the journal for a few statements): long enough for a burst of the
# same caller's submits to take turns, short enough to refuse clearly when the journal is stuck.
SUBMIT_LOCK_TIMEOUT_SECONDS: Final = 10.0
# A task id the journal could not take after an accepted submit is returned at once (with a
# warning) and its write retried after these pauses: about two minutes in all, long enough to
# outlast another process's long transaction, short enough to give up while someone still reads
# the log.
JOURNAL_RETRY_DELAYS_SECONDS: Final = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
# Finished and failed tasks unchanged this long are pruned (0 keeps everything). Long: the journal
# is the user's record of what was paid for, and a row costs about a kilobyte.
JOURNAL_RETENTION_DAYS: Final = 90.0
# The first prune waits until the server has settled (a host is waiting for its tool list), then
# one runs a day: retention is counted in days, so pruning more often would gain nothing.
JOURNAL_PRUNE_FIRST_DELAY_SECONDS: Final = 60.0
JOURNAL_PRUNE_INTERVAL_SECONDS: Final = 24 * 3600.0

# --- Bounds on what a caller sends ----------------------------------------------------------------
# Google's Vertex AI model pages give no prompt limit; the Gemini API's Veo model page gives a
# text input of 1,024 tokens, about 4,000 characters of English. Counting tokens needs Google's
# tokenizer, so the cap is on characters, twice that: it refuses what could never fit (and keeps
# megabytes out of the request, the journal and every listing), and leaves the exact token count
# to the upstream, whose refusal costs nothing.
PROMPT_MAX_CHARS: Final = 8_000
# metadata holds Veo's flat parameters plus keys passed through; these bounds are far beyond any
# documented use and keep a hostile caller from storing or forwarding megabytes or deep nesting.
METADATA_MAX_KEYS: Final = 64
METADATA_MAX_DEPTH: Final = 8
METADATA_MAX_BYTES: Final = 16 * 1024
# What a status answer carries is cut to this before it is shown, logged or journaled: APIMP's
# messages are a sentence or two, and a task lists one video (up to 4 with sampleCount). The file
# list keeps far more than DOWNLOAD_MAX_FILES, so that a refusal can still say how many were listed.
UPSTREAM_TEXT_MAX_CHARS: Final = 2_000
# The most of one APIMP answer that is read (decoded): a status or submit answer is a few KiB, and
# one far larger is cut off unread rather than held in memory.
UPSTREAM_ANSWER_MAX_BYTES: Final = 4 * 1024 * 1024
UPSTREAM_FILES_MAX: Final = 100
# list_tasks and apimp://tasks show this much of each prompt (apimp://tasks/{id} shows all of it).
PROMPT_PREVIEW_CHARS: Final = 160

# --- Streamable HTTP transport -------------------------------------------------------------
DEFAULT_HTTP_HOST: Final = "127.0.0.1"
# --- Per-principal limits (authenticated HTTP callers) -------------------------------------------
# A Veo task takes minutes, so a handful at once is a busy person; twenty 8 s Veo 3 videos an hour
# is about 64 USD at Google's list price: enough for real work, a ceiling on a leaked key. The keys
# file or APIMP_MAX_RUNNING_TASKS / APIMP_MAX_SUBMITS_PER_HOUR change them.
DEFAULT_MAX_RUNNING_TASKS: Final = 4
DEFAULT_MAX_SUBMITS_PER_HOUR: Final = 20
# Both limits look back this far: submits per hour count the last hour, and a task not seen to end
# within it stops counting as running (nobody polled it: it must not block its owner forever).
LIMIT_WINDOW_SECONDS: Final = 3600.0
# --- OAuth access tokens (APIMP_AUTH=oauth) -------------------------------------------------------
# Clocks of issuer and server may disagree a little; a token is that much early or late at most.
JWT_LEEWAY_SECONDS: Final = 30.0
# A token naming an unknown key sends for the issuer's JWKS again (keys rotate), but not more often
# than this: a stream of made-up key ids must not become a stream of requests to the issuer.
JWKS_REFRESH_MIN_SECONDS: Final = 10.0
JWKS_TIMEOUT_SECONDS: Final = 10.0
# A JWKS holds a few keys of a kilobyte or two; anything far larger is not one.
JWKS_MAX_BYTES: Final = 1024 * 1024
DEFAULT_HTTP_PORT: Final = 8000
DEFAULT_SIMULATOR_PORT: Final = 8765

# --- The live player view (MCP Apps) ----------------------------------------------------------
# While a task runs the view polls with short calls, each at most one APIMP status query: often
# enough that the bar visibly moves, rarely enough that a view left open costs little.
UI_POLL_INTERVAL_SECONDS: Final = 2.0
# Once nothing has changed for a while the view waits this fraction of the quiet spell (a stalled
# queue is asked less and less), never longer than the maximum.
UI_POLL_BACKOFF_FRACTION: Final = 0.25
UI_POLL_MAX_INTERVAL_SECONDS: Final = 15.0
# One view call must stay far below the ~60 s after which hosts abandon a call: past this, the
# view gets the last known status (and asks again) instead of waiting on a slow APIMP.
UI_STATUS_CALL_TIMEOUT_SECONDS: Final = 10.0
# Reading the video resource saves the video first when no copy exists: the read waits this long for
# the save (which goes on in the background), then answers "still saving" and the view asks again.
# Under the view's own 30 s request timeout, so the view hears the answer rather than a timeout.
UI_SAVE_CALL_TIMEOUT_SECONDS: Final = 20.0
# The fallback sends the saved video through resources/read as base64 (a third larger) and plays
# it as a data: URI. An 8 s 1080p clip is about 5-20 MB and Chromium decodes a 32 MiB data: URI in
# under a second (measured), but every byte crosses the host's JSON messages, so larger files
# (4k clips, about 60 MB) are left to "open in browser".
UI_VIDEO_BLOB_MAX_BYTES: Final = 32 * 1024 * 1024
# A typical duration is learned (see `durations`) as the median generation time of the same
# model's earlier tasks among the journal's most recent ones, once there are this many; with
# fewer it is the catalog's assumption, and the view says "estimate unavailable".
TYPICAL_DURATION_MIN_SAMPLES: Final = 3
TYPICAL_DURATION_RECENT_TASKS: Final = 200
# A learned typical duration is read from the journal again after this long: a thousand waits
# starting together cost one query per model and format, and history still counts within a minute.
TYPICAL_DURATION_CACHE_SECONDS: Final = 60.0
# Result-file origins seen in this many recent finished tasks are declared in the view's CSP.
UI_SEEN_ORIGINS_RECENT_TASKS: Final = 50

# --- The PostgreSQL task store (a cluster's shared journal) ----------------------------------
# Journal statements are short; a few connections serve an instance's thousand waiters, and a
# PostgreSQL server's default 100 connections then admit a dozen instances or more.
POSTGRES_POOL_MIN_CONNECTIONS: Final = 1
POSTGRES_POOL_MAX_CONNECTIONS: Final = 8
# Long enough for a database on another host to answer, short enough that a wrong URL is told soon.
POSTGRES_CONNECT_TIMEOUT_SECONDS: Final = 10.0
# The most one piece of journal work (a few statements) may take once it has its connection: they
# take milliseconds, so a database that does not answer (a failover, a network partition, a lock
# never released) is told as a journal failure rather than hanging every caller behind it.
POSTGRES_STATEMENT_TIMEOUT_SECONDS: Final = 10.0

# --- A cluster: one poller per task across instances (see `coordination`) --------------------
# An owner renews its leases three times per lease; another instance takes a task over once its
# lease has lapsed and it next re-reads, so an instance's death costs at most lease + re-read
# (8 s) of polling. Shorter leases mean more renewals; the re-read is the safety net for a lost
# notification, and its cost is one small read per followed task per interval.
POLL_LEASE_SECONDS: Final = 6.0
CLUSTER_REREAD_SECONDS: Final = 2.0
# A readiness probe answers within this, whatever the store does: load balancers probe every few
# seconds and treat a slow answer as a failure anyway.
READINESS_TIMEOUT_SECONDS: Final = 3.0

# --- Prices, caps and confirmation ----------------------------------------------------------------
# Above this estimate (in the price table's currency) submit_video asks the person first (MCP
# elicitation), or needs a max_cost covering the estimate from a client that cannot ask. At
# Google's list prices 2.00 USD is five seconds of Veo 3.1 standard: drafts on the fast models go
# through, a full 8 s standard clip (3.20 USD) or any 4k clip is confirmed. APIMP_CONFIRM_ABOVE=off
# turns it off; with a credit-denominated price table, set it in credits.
CONFIRM_ABOVE_COST: Final = 2.0
# The zone whose midnight begins the budget's day and month: UTC unless APIMP_BUDGET_TIMEZONE says.
BUDGET_TIMEZONE: Final = "UTC"
