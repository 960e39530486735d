"""Invokes every sample in events/ through the Lambda runtime emulator (`cargo lambda watch`)
and checks each answer against events/expected.json.

usage: python infra/invoke_samples.py <moto-endpoint>
Needs the `local-stack` binary built (cargo build -p local-stack) and cargo-lambda in .venv.
Prints one line per invocation and a closing `emulator: N passed, M failed` line; exits 1 on
any failure. Everything it starts listens on 127.0.0.1 and is stopped before it returns.
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from loopback import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
WEBHOOK_SECRET = "whsec_local_dev_secret"


def main():
    moto = sys.argv[1]
    env = dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}", STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    local_stack = TARGET / "debug" / "local-stack"
    prefix = f"emu{os.getpid()}"
    provisioned = subprocess.run([str(local_stack), "provision", moto, prefix], capture_output=True, text=True, env=env)
    if provisioned.returncode != 0:
        print(f"provisioning failed: {provisioned.stderr}")
        return 1
    env_file = tempfile.NamedTemporaryFile("w", suffix=".env", delete=False)
    env_file.write(provisioned.stdout)
    env_file.write(
        f"AWS_ENDPOINT_URL={moto}\nAWS_ACCESS_KEY_ID=test\nAWS_SECRET_ACCESS_KEY=test\n"
        f"AWS_REGION=us-east-1\nSTRIPE_WEBHOOK_SECRET={WEBHOOK_SECRET}\nRUST_LOG=warn\n"
    )
    env_file.close()
    port = free_port()
    log = open(Path(tempfile.gettempdir()) / f"billing-emulator-{port}.log", "w")
    watch = subprocess.Popen(
        ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
         "--env-file", env_file.name, "--ignore-changes"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    passed = failed = 0
    try:
        if not wait_for(port, 120):
            print("the emulator did not start")
            return 1
        manifest = json.loads((ROOT / "events" / "expected.json").read_text())
        # Every sample is invoked, and every function is invoked at least once.
        listed = {c["sample"] for c in manifest["invocations"]}
        on_disk = {p.name for p in (ROOT / "events").glob("*.json")} - {"expected.json"}
        functions = {p.parent.parent.name for p in (ROOT / "functions").glob("*/src/main.rs")}
        invoked = {c["function"] for c in manifest["invocations"]}
        for missing in sorted(on_disk - listed):
            print(f"FAIL events/{missing} is not in events/expected.json")
            failed += 1
        for missing in sorted(functions - invoked):
            print(f"FAIL function {missing} has no sample in events/expected.json")
            failed += 1
        for case in manifest["invocations"]:
            sample = ROOT / "events" / case["sample"]
            data_file = sample
            if case.get("resign"):
                signed = subprocess.run([str(local_stack), "resign", str(sample)], capture_output=True, text=True, env=env)
                tmp = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
                tmp.write(signed.stdout)
                tmp.close()
                data_file = Path(tmp.name)
            run = subprocess.run(
                ["cargo", "lambda", "invoke", case["function"], "--invoke-address", "127.0.0.1",
                 "--invoke-port", str(port), "--data-file", str(data_file), "--output-format", "json"],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
            )
            try:
                answer = json.loads(run.stdout)
            except json.JSONDecodeError:
                answer = None
            if "batch_item_failures" in case:
                got = len(answer.get("batchItemFailures", [])) if isinstance(answer, dict) else None
                want = case["batch_item_failures"]
                label = "batch item failures"
            else:
                got = answer.get("statusCode") if isinstance(answer, dict) else None
                want = case["status"]
                label = "status"
            ok = got == want
            passed += ok
            failed += not ok
            print(f"{'ok  ' if ok else 'FAIL'} {case['function']:<16} {case['sample']:<30} {label} {got} (want {want})")
            if not ok:
                print(f"     stdout: {run.stdout[:400]!r} stderr: {run.stderr[-400:]!r}")
    finally:
        os.killpg(watch.pid, signal.SIGTERM)
        try:
            watch.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(watch.pid, signal.SIGKILL)
        os.unlink(env_file.name)
    print(f"emulator: {passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
