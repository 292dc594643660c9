"""Mechanical changes: what no person types key by key (vendored trees, lock files, generated,
minified and data files, notebooks, licence texts, mass reformats), so the render skips them.

Pure and data-driven: `change_reason(path, before, after)` judges one file change and
`commit_reason(rows)` a whole commit; each returns a key of `REASONS` or None. The crawl
already drops its own list of vendored paths (ghframes.crawl.history.VENDORED_PATTERNS:
node_modules/, vendor/, third_party/, bower_components/, .venv/, dist/, the common lock files,
*.min.js, *.min.css, *.map, *.pb.go, *_pb2.py); render may not import crawl (tests/test_layout.py,
LIBRARY_LAYERS), so the lists here hold only what that list lacks.

Cheap checks run first: the path, then the first HEADER_CHARS characters, then one split of
the text into lines for the line statistics. Nothing here reads a file or the clock.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections import Counter

VENDORED = "vendored"
LOCK_FILE = "lock_file"
GENERATED = "generated"
NOTEBOOK = "notebook"
DATA = "data"
LICENCE = "licence"
MECHANICAL_COMMIT = "mechanical_commit"

REASONS = {
    VENDORED: "The path lies in a vendored or installed third-party tree the crawl's list lacks "
    "(Godeps/_workspace/, _vendor/, vendored/, site-packages/, .yarn/, Pods/, ...: "
    "ghframes.render.mechanical.VENDORED_DIRS).",
    LOCK_FILE: "The file is a lock or pinning file that a package manager writes (*.lock, go.sum, "
    "packages.lock.json, gradle.lockfile, ...: ghframes.render.mechanical.LOCK_FILES).",
    GENERATED: "The file is machine-made: its first lines say so (`Code generated ... DO NOT "
    "EDIT.`, `@generated`, a generator's banner), its name is a generator's (*.pb.cc, *.g.dart, "
    "*.snap, ...), or it is minified (long lines).",
    NOTEBOOK: "The file is a Jupyter notebook (*.ipynb): JSON with outputs, written by Jupyter.",
    DATA: "The file is machine-made data: vector graphics (*.svg), a data file (csv, json, xml, "
    "...) whose change spans more than 20 kB or whose lines are very long, or a base64/hex blob.",
    LICENCE: "The file is a licence or notice text (LICENSE, COPYING, NOTICE, ... or a prose file "
    "that is mostly a well-known licence): pasted, never typed.",
    MECHANICAL_COMMIT: "The commit is a mass mechanical change: at least 10 files modified, at "
    "least 80% of them reformatted only or given the same search-and-replace edit.",
}

# --- paths -------------------------------------------------------------------------------------

# Folders that hold other people's code, by well-known convention only (a word people also use
# for their own code, such as external/, extern/, deps/, lib/, venv/, is not here):
VENDORED_DIRS = (
    "Godeps/_workspace",  # godep's copied GOPATH (Go before modules)
    "_vendor",  # pip, setuptools, pkg_resources: src/pip/_vendor/
    "vendored",  # botocore/vendored/, a copied library under that exact name
    "site-packages", "dist-packages",  # an installed Python environment committed with it
    "__pypackages__",  # PEP 582 local packages (pdm)
    ".yarn",  # Yarn 2+: releases/, cache/, plugins/, unplugged/
    "Pods",  # CocoaPods' installed pods
    "Carthage/Checkouts", "Carthage/Build",  # Carthage's dependencies and their builds
    "jspm_packages", "web_modules",  # jspm's and Snowpack's installed packages
    ".bundle",  # Bundler's install path and config
    "elm-stuff", ".stack-work",  # Elm's packages and build, Haskell Stack's build tree
    "3rdparty", "3rd_party", "3rd-party", "third-party", "thirdparty",  # the crawl's third_party/
    "ThirdParty",  # Unreal Engine's Source/ThirdParty/
)  # fmt: skip
_VENDORED_DIR_PATHS = tuple(f"/{d}/" for d in VENDORED_DIRS)

# Files a package manager writes (names; the crawl has package-lock.json, yarn.lock, ...).
LOCK_FILES = (
    "*.lock",  # Cargo, poetry, Gemfile, composer, Podfile, mix, pubspec, flake, Gopkg, glide...
    "*.lockfile",  # Gradle's dependency locking: gradle.lockfile, buildscript-gradle.lockfile
    "*.lock.json",  # NuGet packages.lock.json, .NET Core project.lock.json
    "*.lock.yaml", "*.lock.yml",  # conda-lock
    "*.lock.hcl",  # Terraform's .terraform.lock.hcl
    "*-lock.json", "*-lock.yaml", "*-lock.yml",  # npm, pnpm, vcpkg
    "go.sum", "go.work.sum",
    "Godeps.json",  # godep's Godeps/Godeps.json
    "Package.resolved", "Cartfile.resolved",  # SwiftPM, Carthage
    "shrinkwrap.yaml",  # pnpm before v3
    "cabal.project.freeze",
    "Manifest.toml", "JuliaManifest.toml",  # Julia Pkg ("This file is machine-generated")
)  # fmt: skip
_LOCK_RE = re.compile("|".join(fnmatch.translate(p) for p in LOCK_FILES))

# Names generators give their output (the crawl has *.pb.go, *_pb2.py, *.min.js, *.min.css).
GENERATED_FILES = (
    "*.pb.cc", "*.pb.h", "*_pb2.pyi", "*_pb2_grpc.py", "*.pb.swift", "*_pb.js", "*_pb.d.ts",
    "*.pb.gw.go",  # protoc and its plugins
    "*_generated.*", "*.generated.*",  # flatbuffers, many code generators
    "zz_generated.*",  # Kubernetes' deepcopy/defaults generators
    "*.g.dart", "*.freezed.dart", "*.gr.dart",  # Dart build_runner: json_serializable, freezed
    "*.g.cs",  # C# source generators and XAML
    "*.Designer.cs", "*.designer.cs",  # Visual Studio's form and resource designers
    "*.snap",  # Jest/Vitest __snapshots__/*.snap, Rust insta snapshots
    "*-min.js", "*-min.css",  # the older minified spelling
    "*.pbxproj", "*.xcscheme", "*.xcworkspacedata",  # Xcode's project, schemes, workspace
    "*.storyboard", "*.xib",  # and Interface Builder's files
    "gradlew", "gradlew.bat", "mvnw", "mvnw.cmd",  # written by `gradle wrapper`, `mvn wrapper`
    ".pnp.cjs", ".pnp.js", ".pnp.loader.mjs",  # Yarn Plug'n'Play's resolution map
)  # fmt: skip
_GENERATED_NAME_RE = re.compile("|".join(fnmatch.translate(p) for p in GENERATED_FILES))

# Extensions of prose: licence texts live in these; long lines are normal in them (a paragraph
# per line), so the minified rule never applies to them. "" is a file without an extension.
PROSE_EXTENSIONS = frozenset(
    ("", "md", "markdown", "txt", "text", "rst", "adoc", "asciidoc", "org", "tex")
)
# Machine-written data formats, judged by the size of the change and by line length.
DATA_EXTENSIONS = frozenset(
    ("csv", "tsv", "psv", "json", "jsonl", "ndjson", "geojson", "topojson", "xml", "kml", "gpx")
)
VECTOR_EXTENSIONS = frozenset(("svg", "eps"))  # path data drawn in an editor, never typed

# LICENSE, LICENCE.md, COPYING.LESSER, LICENSE-MIT, LICENSE_1_0.txt, NOTICE, UNLICENSE,
# THIRD-PARTY-NOTICES.txt, PATENTS, COPYRIGHT, and in capitals after a prefix (ICON_LICENSE.md,
# main.js.LICENSE.txt as webpack writes it), in any folder; not license.py, notice_board.md.
_LICENCE_NAME_RE = re.compile(
    r"(?:[\w.+-]*[-_.](?:LICEN[CS]ES?|COPYING|COPYRIGHT|NOTICES?|PATENTS)"
    r"|(?i:(?:(?:third[-_ ]?party|3rd[-_]?party)[-_ ]?)?(?:un)?"
    r"(?:licen[cs]es?|copying|copyright|notices?|patents)))"
    # a tag: all capitals (-MIT, .APACHE, _DEJAVU), a version (3, -2.0, _1_0), or a known word
    r"(?:[-_.](?:[A-Z][A-Z0-9+]*|[\w+]*\d[\w+]*|(?i:mit|apache|bsd|gpl|lgpl|agpl|mpl|isc|"
    r"lesser|library|lib|zlib|boost|cc0|ofl|wtfpl|header|clause|only|or|later|exception|"
    r"third|party|external))|\d[\w+]*)*"
    r"(?:\.(?i:md|markdown|txt|text|rst|adoc|asciidoc|org|html?))?"
)
_LICENCE_DIRS = frozenset(("LICENSES", "licenses", "LICENCES", "licences"))  # REUSE's LICENSES/

# --- content -----------------------------------------------------------------------------------

# Generators write their banner first, after at most a licence header (15-18 comment lines for
# Apache or GPL): a marker further down, or after a line of code, is a generator's own template.
HEADER_CHARS = 4000
HEADER_LINES = 30
_CODE_LINE_RE = re.compile(
    r"[ \t]*(?:import|from \S+ import|def|class|package|using|namespace|#include|#import|#define"
    r"|var|let|const|function|module|public|private|static|export|require|use)\b"
)
# (hint, pattern): a pattern runs on a header line only when the casefolded line holds its hint.
_GENERATED_HEADERS = tuple(
    (hint, re.compile(pattern))
    for hint, pattern in (
        # Go's convention (https://go.dev/s/generatedcode), exactly as specified
        ("code generated", r"^// Code generated .* DO NOT EDIT\.\r?$"),
        # Meta's marker (Buck, Relay, Hack, Cargo.lock, torchgen)
        ("@generated", r"@generated\b"),
        (
            "generat",
            "|".join(
                (
                    # one line that says both: "Generated by X. DO NOT EDIT!", "DON'T EDIT! ..."
                    r"(?i:generat.*\b(?:do not|don't|never) (?:edit|modify)\b)",
                    r"(?i:\b(?:do not|don't|never) (?:edit|modify)\b.*generat)",
                    # "This file is automatically generated", .NET's "This code was generated"
                    r"(?i:\bthis (?:file|code) (?:is|was|has been) "
                    r"(?:auto-?|automatically |machine[- ]|mechanically )?generated)",
                    # a line that opens with the claim: "Autogenerated by Thrift", "AUTO-GENERATED"
                    r"(?i:^\W*(?:auto-?generated|automatically generated|machine[- ]generated)"
                    r"(?: (?:by|from|with|using|file|code|on)\b|\W*$))",
                    # a tool's banner with its version: Cython, Django migrations, Doxygen,
                    # CoffeeScript, ANTLR ("Generated from X.g4 by ANTLR 4.7"), Nim, PEG.js
                    r"(?i:^\W*generated (?:by|with|from) .{1,40}?\bv?\d+\.\d+)",
                )
            ),
        ),
        ("bison", r"made by GNU Bison"),
        ("flex", r"lexical scanner generated by flex"),
        ("webpackbootstrap", r"webpackBootstrap"),  # webpack's runtime, atop every bundle
        (" dump", r"^-- (?:MySQL dump \d|PostgreSQL database dump|phpMyAdmin SQL Dump)"),
    )
)

# Minified and machine-written lines, in any file but prose. Hand-written code stays under ~120
# characters a line (formatters wrap at 79-120); a line over 500 is a bundle, a minified file,
# a one-line JSON dump or pasted data. A file is judged so when such lines hold LONG_LINE_SHARE
# of it, so a long description or a pasted data URI in a hand-written file does not condemn the
# rest. Measured on the 29,000 text files of a virtual environment (torch, sympy, botocore, ray,
# pygments, cfn-lint, ...): hand-written JSON schemas with long descriptions keep such lines
# under 49% of the file; at 50% or more are protobuf modules, PLY tables, torchgen headers,
# minified bundles, Unicode tables and two tests made of pasted expressions.
LONG_LINE_CHARS = 500
LONG_LINE_SHARE = 0.5
# Or, in any code or data file, an average line over MINIFIED_MEAN_LINE_CHARS (hand-written code
# averages 25-45 characters a line), once the file is big enough for the average to mean
# something (a one-line 250-character script is typed).
MINIFIED_MEAN_LINE_CHARS = 200
MINIFIED_MIN_CHARS = 1000
# Data files: a change whose changed span (the text between the common prefix and suffix of the
# two sides) is over this is machine-written: nobody types 20 kB of CSV or JSON in one commit.
DATA_SPAN_CHARS = 20_000
# Blobs: base64 or hex runs without spaces. A run of BLOB_RUN_CHARS inside a line, or a whole
# line of base64 of at least BLOB_LINE_CHARS (PEM wraps at 64, MIME at 76), counts; the file is
# data when blobs hold BLOB_SHARE of it, or BLOB_MAX_CHARS in all (never typed key by key).
BLOB_RUN_CHARS = 200
BLOB_LINE_CHARS = 60
BLOB_SHARE = 0.5
BLOB_MAX_CHARS = 10_000
_BLOB_RUN_RE = re.compile(rf"(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{{{BLOB_RUN_CHARS},}}={{0,2}}")
_BLOB_LINE_RE = re.compile(r"(?:b?[\"'])?[A-Za-z0-9+/]+={0,2}(?:[\"'],?|\\)?")  # also quoted
_HEX_MIN = 7  # a hex line (xxd -i, a C table) has at least 8 literals and nothing else
_HEX_LINE_RE = re.compile(r"(?:0[xX][0-9A-Fa-f]{1,16},?\s*)+")

# Content rule for licences: the standard opening of a well-known licence within the first
# LICENCE_OPENING_CHARS (whitespace collapsed) of a prose file that the licence is at least half
# of. Each opening is the licence's own text, not the sentence that names it ("Licensed under
# the Apache License, Version 2.0" is a header or a README, "Apache License Version 2.0, January
# 2004" is the licence); the length is that of the shortest standard text it opens, in characters.
LICENCE_OPENING_CHARS = 2000
LICENCE_SHARE = 0.5
LICENCE_OPENINGS = (
    ("permission is hereby granted, free of charge, to any person obtaining a copy", 1000),  # MIT
    ("apache license version 2.0, january 2004", 10_000),
    ("gnu general public license version 2, june 1991", 17_000),
    ("gnu general public license version 3, 29 june 2007", 34_000),
    ("gnu lesser general public license version 3, 29 june 2007", 7_000),
    ("gnu lesser general public license version 2.1, february 1999", 25_000),
    ("gnu library general public license version 2, june 1991", 24_000),
    ("gnu affero general public license version 3, 19 november 2007", 33_000),
    ("mozilla public license version 2.0 =", 15_000),
    (
        "redistribution and use in source and binary forms, with or without modification, "
        "are permitted provided that",
        1100,
    ),  # BSD 2- and 3-clause
    ("permission to use, copy, modify, and/or distribute this software for any purpose", 650),
    ("permission to use, copy, modify, and distribute this software for any purpose", 650),  # ISC
    ("this is free and unencumbered software released into the public domain", 1100),
    ("boost software license - version 1.0", 1200),
    ("creative commons legal code cc0 1.0 universal", 6500),
    ("eclipse public license - v 2.0", 12_000),
    ("the accompanying program is provided under the terms of this eclipse public license", 10_000),
    ("this software is provided 'as-is', without any express or implied warranty", 750),  # zlib
)
# A licence carried as a comment (a script without an extension): most of its lines start so. A
# Markdown licence's one "# MIT License" heading is not most.
_COMMENT_MARKERS = ("#", "//", "/*", "* ", "-- ", ";", "%")

# --- commits -----------------------------------------------------------------------------------

# A reformat or search-and-replace touches many files; below MASS_FILES modified files a commit
# is judged file by file (a 4-file reformat may well be a person's own cleanup).
MASS_FILES = 10
# The share of those files that must be mechanical; the rest may be the few hand edits a tool
# run needs (a config file, a version bump).
MECHANICAL_SHARE = 0.8
# A search-and-replace: a (removed, added) word pair common to at least this share of the
# modified files that are not reformats, and a file whose every edit is such a common pair.
SAME_EDIT_SHARE = 0.8
# Line diffs over more lines than this are not computed, nor word diffs of more changed lines
# (a file changed that much is not a search-and-replace: a translation catalogue, a rewrite);
# keeps a commit of hundreds of files to milliseconds a file.
MAX_DIFF_LINES = 5000
MAX_CHANGED_LINES = 1000
_TRAILING_COMMA_RE = re.compile(r",(?=[)\]}])")
_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def change_reason(path: str, before: str | None, after: str | None) -> str | None:
    """The skip reason (a key of REASONS) for one file change, or None when a person types it.

    Deletions and changes that leave the text as it was need no typing: None. Otherwise the
    path decides first, then `after`'s content; `before` bounds how much of a data file changed.
    """
    if after is None or after == before:
        return None
    reason = path_reason(path)
    if reason is not None:
        return reason
    name = path.rpartition("/")[2]
    ext = name.rpartition(".")[2].lower() if "." in name.lstrip(".") else ""
    if _has_generated_header(after):
        return GENERATED
    lines = after.split("\n")
    # profiled: the only pass over every line; the rules below read the few wide ones
    wide = [line for line in lines if len(line) >= BLOB_LINE_CHARS]
    if ext in PROSE_EXTENSIONS:
        return LICENCE if _is_licence_text(after) else _blob_reason(after, wide)
    if ext in DATA_EXTENSIONS and _changed_span(before or "", after) > DATA_SPAN_CHARS:
        return DATA
    blob = _blob_reason(after, wide)
    if blob is not None:
        return blob
    size = len(after)
    minified = size >= MINIFIED_MIN_CHARS and size > MINIFIED_MEAN_LINE_CHARS * len(lines)
    if not minified and size > LONG_LINE_CHARS:
        long_chars = sum(n for n in map(len, wide) if n > LONG_LINE_CHARS)
        minified = long_chars >= LONG_LINE_SHARE * size
    if minified:
        return DATA if ext in DATA_EXTENSIONS else GENERATED
    return None


def path_reason(path: str) -> str | None:
    """The reason the path alone gives (vendored, lock file, notebook, licence, generated,
    vector data), or None. Patterns are case-sensitive where the convention is."""
    folder, _, name = path.rpartition("/")
    if folder:
        wrapped = f"/{folder}/"
        if any(d in wrapped for d in _VENDORED_DIR_PATHS):
            return VENDORED
    if _LOCK_RE.match(name):
        return LOCK_FILE
    ext = name.rpartition(".")[2].lower() if "." in name.lstrip(".") else ""
    if ext == "ipynb":
        return NOTEBOOK
    if _LICENCE_NAME_RE.fullmatch(name):
        return LICENCE
    if ext in PROSE_EXTENSIONS and folder.rpartition("/")[2] in _LICENCE_DIRS:
        return LICENCE
    if _GENERATED_NAME_RE.match(name) or any(p.endswith(".egg-info") for p in folder.split("/")):
        return GENERATED
    if ext in VECTOR_EXTENSIONS:
        return DATA
    return None


def _has_generated_header(text: str) -> bool:
    """A generator's banner in the first HEADER_LINES lines, before any line of code."""
    head = text[:HEADER_CHARS]
    parts = head.split("\n", HEADER_LINES)
    if len(parts) > HEADER_LINES:
        head = head[: len(head) - len(parts[-1]) - 1]
    folded = head.casefold()
    if not any(hint in folded for hint, _ in _GENERATED_HEADERS):
        return False
    for line in head.split("\n"):
        if _CODE_LINE_RE.match(line):
            return False
        low = line.casefold()
        if any(hint in low and pattern.search(line) for hint, pattern in _GENERATED_HEADERS):
            return True
    return False


def _is_licence_text(text: str) -> bool:
    """A prose file that opens with a well-known licence's own text and is mostly that text."""
    folded_head = text[:HEADER_CHARS].casefold()
    opening = " ".join(folded_head.split())[:LICENCE_OPENING_CHARS]
    for words, chars in LICENCE_OPENINGS:
        if words in opening and len(text) * LICENCE_SHARE <= chars:
            # A script or source file without an extension carrying the licence as comments.
            lines = [line.lstrip() for line in folded_head.splitlines()[:40] if line.strip()]
            commented = sum(line.startswith(_COMMENT_MARKERS) for line in lines)
            return commented * 2 < len(lines)
    return False


def _blob_reason(text: str, wide: list[str]) -> str | None:
    """DATA when base64/hex blobs hold BLOB_SHARE of the text or BLOB_MAX_CHARS in all.

    `wide`: the text's lines of at least BLOB_LINE_CHARS characters (the only ones that can
    hold a blob)."""
    needed = min(BLOB_MAX_CHARS, BLOB_SHARE * len(text))
    if not wide or sum(map(len, wide)) < needed:
        return None
    blob = 0
    for line in wide:
        if len(line) >= BLOB_RUN_CHARS:
            blob += sum(map(len, _BLOB_RUN_RE.findall(line)))
            continue
        body = line.strip()
        base64 = " " not in body and _BLOB_LINE_RE.fullmatch(body) and body.strip("/")  # no ////
        if base64 or (body.count("0x") > _HEX_MIN and _HEX_LINE_RE.fullmatch(body)):
            blob += len(line)
    return DATA if blob >= needed else None


def _changed_span(before: str, after: str) -> int:
    """Characters of `after` between the longest common prefix and suffix of the two sides."""
    limit = min(len(before), len(after))
    prefix = _common_length(before, after, limit, lambda a, b, k: a[:k] == b[:k])
    limit -= prefix
    suffix = _common_length(
        before, after, limit, lambda a, b, k: a[len(a) - k :] == b[len(b) - k :]
    )
    return len(after) - prefix - suffix


def _common_length(a: str, b: str, limit: int, same) -> int:
    """The largest k <= limit with same(a, b, k), by bisection (each test is one memcmp)."""
    low, high = 0, limit
    while low < high:
        mid = (low + high + 1) // 2
        if same(a, b, mid):
            low = mid
        else:
            high = mid - 1
    return low


def commit_reason(rows: list[dict]) -> str | None:
    """MECHANICAL_COMMIT when the commit is a mass reformat or search-and-replace, else None.

    `rows` are the commit's edit rows (`path`, `status`, `before`, `after`). Only modified (and
    renamed) files whose text changed count; added files are judged one by one (change_reason).
    """
    changed = [
        (row["before"], row["after"])
        for row in rows
        if row["status"] in ("modified", "renamed")
        and row["before"] is not None
        and row["after"] is not None
        and row["before"] != row["after"]
    ]
    if len(changed) < MASS_FILES:
        return None
    needed = MECHANICAL_SHARE * len(changed)
    rest = [(b, a) for b, a in changed if not is_format_only(b, a)]
    mechanical = len(changed) - len(rest)
    if mechanical >= needed:
        return MECHANICAL_COMMIT
    allowed = len(changed) - needed  # files that may be neither reformat nor common edit
    signatures, failures = [], 0
    for before, after in rest:
        signature = edit_signature(before, after)
        if signature is not None:
            signatures.append(signature)
        else:
            failures += 1
            if failures > allowed:
                return None  # a cheap way out of a commit of many large rewrites
    counts = Counter(pair for signature in signatures for pair in signature)
    common = {pair for pair, n in counts.items() if n >= SAME_EDIT_SHARE * len(rest)}
    mechanical += sum(1 for signature in signatures if signature <= common)
    return MECHANICAL_COMMIT if mechanical >= needed else None


def is_format_only(before: str, after: str) -> bool:
    """The two sides differ only as a formatter or import sorter makes them differ: in
    whitespace, quote characters, trailing commas, parentheses and semicolons, or line order."""
    # profiled: none of these edits changes how often a letter occurs; two str.count calls
    # turn away most real edits before the text is copied
    if any(before.count(letter) != after.count(letter) for letter in "et"):
        return False
    b, a = "".join(before.split()), "".join(after.split())
    if a == b or _formatted(a) == _formatted(b):
        return True
    # isort, sort-imports, clang-format's include sorting: the same lines in another order
    return len(a) == len(b) and sorted(before.split("\n")) == sorted(after.split("\n"))


def _formatted(squeezed: str) -> str:
    """Text without whitespace as formatters leave it alike: black and prettier swap quotes,
    add or drop trailing commas, parentheses (black's wrapping, prettier's arrow parameters)
    and semicolons. str.replace, not str.translate: translate is slow on non-ASCII text."""
    text = _TRAILING_COMMA_RE.sub("", squeezed).replace("'", '"')
    return text.replace("(", "").replace(")", "").replace(";", "")


def edit_signature(before: str, after: str) -> frozenset[tuple[str, str]] | None:
    """The word-level edits of a file's line diff, as (removed, added) pairs; None when the diff
    is too large to compute or empty. A search-and-replace gives every file the same pairs."""
    a, b = before.split("\n"), after.split("\n")
    start = 0
    while start < min(len(a), len(b)) and a[start] == b[start]:
        start += 1
    end_a, end_b = len(a), len(b)
    while end_a > start and end_b > start and a[end_a - 1] == b[end_b - 1]:
        end_a, end_b = end_a - 1, end_b - 1
    a, b = a[start:end_a], b[start:end_b]
    pairs: set[tuple[str, str]] = set()
    if len(a) == len(b):  # sed keeps the line count: pair the lines in place
        line_pairs = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    elif len(a) + len(b) > MAX_DIFF_LINES:
        return None
    else:
        line_pairs = []
        matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
        for op, i1, i2, j1, j2 in matcher.get_opcodes():
            if op == "replace" and i2 - i1 == j2 - j1:
                line_pairs += zip(a[i1:i2], b[j1:j2], strict=True)
            elif op != "equal":
                pairs.update((x.strip(), "") for x in a[i1:i2] if x.strip())
                pairs.update(("", y.strip()) for y in b[j1:j2] if y.strip())
    if len(line_pairs) > MAX_CHANGED_LINES:
        return None
    for x, y in set(line_pairs):
        tx, ty = _TOKEN_RE.findall(x), _TOKEN_RE.findall(y)
        if tx == ty:
            continue  # whitespace only
        matcher = difflib.SequenceMatcher(None, tx, ty, autojunk=False)
        pairs.update(
            (" ".join(tx[i1:i2]), " ".join(ty[j1:j2]))
            for op, i1, i2, j1, j2 in matcher.get_opcodes()
            if op != "equal"
        )
    return frozenset(pairs) or None
