#!/usr/bin/env bash
# End to end in a real terminal: the app in tmux at 80x24, driven with send-keys, read with capture-pane.
# A new user's first run: open `tuitune` with no recipe (the bundled quickstart is current, and the Train
# screen says so), F4, t: train it (the demo model on CPU), quit mid-run, check the trainer lives on,
# reopen `tuitune` and see the run continue (the step grows), let it finish, then F6, Enter: the tuned
# model answers "Who are you?" as Tally, beside the base model's answer. Prints what each stage showed
# and the time from t to the answer.
# Needs tmux.
#
#   scripts/e2e_tmux.sh [WORKDIR]        (default: a new temporary folder; runs go to WORKDIR/runs)
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PYTHON:-$(command -v python3)}"
[ -x /work/venv/bin/python ] && PY="${PYTHON:-/work/venv/bin/python}"
WORK="${1:-$(mktemp -d /tmp/tuitune-e2e.XXXXXX)}"
SESSION="tuitune-e2e-$$"
mkdir -p "$WORK"
ln -sfn "$REPO/recipes" "$WORK/recipes"
APP="cd '$WORK' && HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} PYTHONPATH='$REPO' TERM=xterm-256color '$PY' -m tuitune --lang en"

screen() { tmux capture-pane -p -t "$SESSION"; }
keys() { tmux send-keys -t "$SESSION" "$@"; }
fail() { echo "FAIL: $*"; echo "---- screen ----"; screen || true; cleanup; exit 1; }
show() { echo "---- $1 ----"; screen | sed 's/[[:space:]]*$//' | grep -v '^$' | head -24; }
wait_for() {  # wait_for SECONDS REGEX WHAT
    local deadline=$((SECONDS + $1))
    until screen | grep -Eq "$2"; do
        [ $SECONDS -lt $deadline ] || fail "no '$3' within $1 s"
        sleep 0.5
    done
}
trainer_pid() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['pid'])" "$WORK/runs/quickstart/status.json"; }
step_on_screen() { screen | grep -Eo 'step [0-9]+/' | head -1 | grep -Eo '[0-9]+' || echo 0; }
cleanup() {
    tmux kill-session -t "$SESSION" 2>/dev/null || true
    if [ -f "$WORK/runs/quickstart/status.json" ]; then
        local pid; pid="$(trainer_pid || true)"
        [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && kill "$pid" 2>/dev/null || true
    fi
}
trap cleanup INT TERM

echo "== 1. open the app at 80x24 (work folder $WORK)"
tmux new-session -d -s "$SESSION" -x 80 -y 24 "$APP"
wait_for 60 'F1 Hardware' "the first frame"
show "first frame"

echo "== 2. Train screen: the quickstart is the current recipe (no recipe was opened)"
keys F4
wait_for 20 'Current recipe: quickstart' "the Train screen with the quickstart recipe"
wait_for 10 'bundled quickstart' "the note that this is the bundled quickstart"
show "train screen, before starting"

echo "== 3. t: start training"
started=$SECONDS
keys t
wait_for 60 'Run quickstart' "the run to start"
wait_for 600 'step [1-9][0-9]*/' "the first training step"
show "training"
first_step="$(step_on_screen)"
echo "step on screen: $first_step"

echo "== 4. quit the app mid-run; the trainer lives on"
pid="$(trainer_pid)"
keys C-q
sleep 2
tmux list-panes -t "$SESSION" -F '#{pane_dead}' >/dev/null 2>&1 && tmux kill-session -t "$SESSION" 2>/dev/null || true
kill -0 "$pid" 2>/dev/null || fail "the trainer (pid $pid) died with the app"
echo "app closed; trainer pid $pid still alive: yes"

echo "== 5. reopen tuitune: it finds the live run and follows it"
tmux new-session -d -s "$SESSION" -x 80 -y 24 "$APP"
wait_for 60 'Run quickstart' "the Train screen on the live run"
wait_for 60 'step [1-9][0-9]*/' "the replayed steps"
show "reopened"
reopened_step="$(step_on_screen)"
deadline=$((SECONDS + 600))
until [ "$(step_on_screen)" -gt "$reopened_step" ]; do
    [ $SECONDS -lt $deadline ] || fail "the step did not grow after reopening"
    sleep 1
done
show "still training after reopening"
echo "step on screen: $first_step before quitting, $reopened_step on reopening, $(step_on_screen) now"

echo "== 6. the run finishes while the app follows it"
wait_for 900 'Run quickstart +done|[^a-z]done[^a-z]' "the run to finish"
show "finished"
[ "$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['status'])" "$WORK/runs/quickstart/status.json")" = done ] \
    || fail "status.json does not say done"
kill -0 "$pid" 2>/dev/null && sleep 5
kill -0 "$pid" 2>/dev/null && fail "the trainer still runs after finishing"
echo "trainer ended; result: $(ls "$WORK/runs/quickstart" | tr '\n' ' ')"

echo "== 7. Chat & Eval: load the finished run, ask who it is"
keys F6
wait_for 30 'press enter|quickstart' "the Chat screen offering the run"
sleep 1
show "chat screen"
keys Enter
wait_for 300 'quickstart.*(lora|LoRA)|adapter' "the tuned model loaded"
sleep 1
keys -l "Who are you?"
keys Enter
wait_for 300 'Tally' "an answer naming Tally"
wait_for 300 '^ *base' "the base model's answer beside it"
sleep 3
show "chat answer, base and tuned side by side"
echo "from t to the tuned answer: $((SECONDS - started)) s (quitting and reopening included)"
keys C-q
sleep 1
cleanup
echo "PASS"
