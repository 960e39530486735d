"""Every relative link in README.md and docs/*.md resolves, checked on every `make test`.

A link `[text](path)` or `[text](path#anchor)` passes when `path` names a file or folder inside
the repository (relative to the page that holds it) and, when it has an anchor and names a
Markdown page (or is only `#anchor`), that page has a heading whose anchor is that one, made the
way GitHub makes them: lower case, punctuation dropped, spaces to hyphens, `-1`, `-2` … for
repeats. Links to other sites (`https:`, `http:`, `mailto:`) are not fetched. Links inside code
blocks and inline code are not links.

Usage: python3 infra/link_check.py [ROOT]   (ROOT defaults to the repository of this file)
Prints each broken link, then `links: N passed, M failed`; exits 1 when any failed.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`[^`]*`")
# [text](target) or [text](target "title"); the text may hold inline code, never a ']'.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def prose_lines(text):
    """The lines outside fenced code blocks, with their numbers."""
    fenced = False
    for number, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def slug(heading):
    text = INLINE_CODE.sub(lambda m: m.group(0)[1:-1], heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading keeps its text
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(page):
    seen = {}
    result = set()
    for _, line in prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        result.add(base if count == 0 else f"{base}-{count}")
    return result


def check(page):
    """(passed, [failure messages]) for one page."""
    passed, failures = 0, []
    for number, line in prose_lines(page.read_text(encoding="utf-8")):
        for match in LINK.finditer(INLINE_CODE.sub("", line)):
            target = match.group(1)
            if EXTERNAL.match(target):
                continue
            path, _, anchor = target.partition("#")
            where = f"{page.relative_to(ROOT)}:{number}: {target}"
            resolved = (page.parent / path).resolve() if path else page
            if ROOT != resolved and ROOT not in resolved.parents:
                failures.append(f"{where}: leaves the repository")
                continue
            if not resolved.exists():
                failures.append(f"{where}: no such file")
                continue
            if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                failures.append(f"{where}: no heading with anchor #{anchor}")
                continue
            passed += 1
    return passed, failures


def main():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    passed, failures = 0, []
    for page in pages:
        if not page.exists():
            failures.append(f"{page.relative_to(ROOT)}: missing")
            continue
        ok, bad = check(page)
        passed += ok
        failures += bad
    for failure in failures:
        print(f"broken link: {failure}")
    print(f"links: {passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
