"""What the browser suites (infra/browser_test.py, infra/console_test.py) share: running each
test method of a suite in one Chromium context, reporting it, and keeping a screenshot of every
page a failed test left open."""
import os
import time
import traceback


def run_tests(suite, names, ctx, shots, results):
    """Runs `suite.<name>()` for each name in order; appends True or False to `results` and
    prints `ok   <name> (<seconds> s)` or `FAIL <name>: <error>`; a failure closes the pages it
    left open after a screenshot `FAILED-<name>-<i>.png` in `shots`. Then prints what each
    test saw (`suite.seen`)."""
    for name in names:
        started = time.time()
        try:
            getattr(suite, name)()
            results.append(True)
            print(f"ok   {name.replace('_', ' ')} ({time.time() - started:.1f} s)")
        except Exception as e:  # noqa: BLE001 - a failed test is reported, the rest still run
            results.append(False)
            print(f"FAIL {name.replace('_', ' ')}: {type(e).__name__}: {e}")
            if os.environ.get("BROWSER_VERBOSE"):
                traceback.print_exc()
            for i, p in enumerate(ctx.pages):
                try:
                    p.screenshot(path=str(shots / f"FAILED-{name}-{i}.png"))
                    p.close()
                except Exception:  # noqa: BLE001
                    pass
    for what, saw in suite.seen.items():
        print(f"     | {what}: {saw}")
