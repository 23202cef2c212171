# Shared helpers for the conformance/java scenarios (sourced, not a scenario itself: not named *.sh).
# K = Apache Kafka 4.0's bin/ (the oracle, from ../shared/oracle next to the repository); LOG_DIR in a temp folder;
# `tool NAME ARGS...` runs bin/NAME.sh with a timeout (JAVA_TOOL_TIMEOUT seconds, 120 unless set).
b="${OSPREY_BOOTSTRAP:?OSPREY_BOOTSTRAP is not set}"
oracle="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)/shared/oracle"
K="$oracle/kafka-4.0.0/bin"
if [ ! -x "$K/kafka-topics.sh" ]; then
  echo "the Kafka oracle is missing: $K/kafka-topics.sh (expected Apache Kafka 4.0.0 at $oracle/kafka-4.0.0)"; exit 1
fi
command -v java >/dev/null 2>&1 || { echo "java is not installed (Kafka's tools need Java 17)"; exit 1; }
tmp="$(mktemp -d)"
# at_exit COMMAND : run COMMAND (eval'd) when the scenario exits, latest first; then the scenario waits for what it
# still runs in the background (every tool has a timeout) and removes its temp folder.
exit_cmds=()
at_exit() { exit_cmds=("$1" "${exit_cmds[@]}"); }
run_exit_cmds() { local c; for c in "${exit_cmds[@]}"; do eval "$c" || true; done; wait 2>/dev/null; rm -rf "$tmp"; }
trap run_exit_cmds EXIT
export LOG_DIR="$tmp/kafka-logs"
mkdir -p "$LOG_DIR"
# A small heap and quick JIT start for the short-lived tools (two cores, many JVM starts).
export KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx512m}"
export KAFKA_JVM_PERFORMANCE_OPTS="${KAFKA_JVM_PERFORMANCE_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData -XX:+UnlockDiagnosticVMOptions -XX:-BytecodeVerificationRemote -Djava.awt.headless=true}"

# tool NAME ARGS... : bin/NAME.sh with a timeout; stdout and stderr as the tool wrote them, its exit code.
tool() {
  local name="$1"; shift
  timeout --kill-after=10 "${JAVA_TOOL_TIMEOUT:-120}" "$K/$name.sh" "$@"
}

# fail MESSAGE [OUTPUT] : print what went wrong (and the output that shows it), exit 1.
fail() {
  echo "$1"
  [ $# -lt 2 ] || printf '%s\n' "$2" | head -c 4000
  exit 1
}

# no_exception WHAT OUTPUT : fail when a tool's output has a Java exception or an ERROR line in it.
no_exception() {
  if printf '%s\n' "$2" | grep -Eq 'Exception|ERROR|Error:'; then fail "$1 printed an error:" "$2"; fi
}

# stop_pid PID : SIGTERM, up to 30 s for it to end, then SIGKILL.
stop_pid() {
  kill -TERM "$1" 2>/dev/null || return 0
  local i; for i in $(seq 1 60); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.5; done
  kill -KILL "$1" 2>/dev/null || true
}

# free_port : a TCP port nobody listens on now.
free_port() {
  /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'
}

# spawn NAME COMMAND... : run a function/command in the background (a subshell; `fail` there ends only it);
# join_all : wait for every spawned one, print the output of those that failed, exit 1 if any did.
# Independent steps run side by side this way: most of a tool's time is its JVM starting.
bg_pids=(); bg_names=()
spawn() {
  local name="$1"; shift
  ( "$@" ) >"$tmp/bg-$name.out" 2>&1 &
  bg_pids+=("$!"); bg_names+=("$name")
}
join_all() {
  local i rc=0
  for i in "${!bg_pids[@]}"; do
    if ! wait "${bg_pids[$i]}"; then echo "[${bg_names[$i]}]"; cat "$tmp/bg-${bg_names[$i]}.out"; rc=1; fi
  done
  bg_pids=(); bg_names=()
  [ $rc = 0 ] || exit 1
}
