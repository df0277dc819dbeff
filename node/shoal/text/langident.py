"""Milvus's `language_identifier` tokenizer: detect each text's language, then analyze the text
with the sub-analyzer configured for it.

`analyzers` maps names to analyzer params and must hold `default`; `mapping` optionally renames a
detected language to an analyzer name. A text goes to `analyzers[mapping.get(lang, lang)]`, else
to `default` (also when detection fails or its confidence is not above `identifier.confidence`).
The detector is whatlang, Milvus's default engine, through the `whatlang-pyo3` wheel (its
trigram profiles are compiled in: nothing is downloaded); languages are named by whatlang's
English names as Milvus names them ("English", "Mandarin", "Japanese", ...). Milvus's other
engine, lingua, answers code 10.

Neighbours: `text.analyzer` (builds the sub-analyzers and wraps this tokenizer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from shoal.errors import invalid, not_supported

PARAMS = ("type", "identifier", "analyzers", "mapping")

# whatlang's ISO 639-3 codes and the English names Milvus routes by (whatlang's `eng_name`)
ENGLISH_NAMES = {
    "epo": "Esperanto", "eng": "English", "rus": "Russian", "cmn": "Mandarin", "spa": "Spanish",
    "por": "Portuguese", "ita": "Italian", "ben": "Bengali", "fra": "French", "deu": "German",
    "ukr": "Ukrainian", "kat": "Georgian", "ara": "Arabic", "hin": "Hindi", "jpn": "Japanese",
    "heb": "Hebrew", "yid": "Yiddish", "pol": "Polish", "amh": "Amharic", "jav": "Javanese",
    "kor": "Korean", "nob": "Bokmal", "dan": "Danish", "swe": "Swedish", "fin": "Finnish",
    "tur": "Turkish", "nld": "Dutch", "hun": "Hungarian", "ces": "Czech", "ell": "Greek",
    "bul": "Bulgarian", "bel": "Belarusian", "mar": "Marathi", "kan": "Kannada", "ron": "Romanian",
    "slv": "Slovene", "hrv": "Croatian", "srp": "Serbian", "mkd": "Macedonian", "lit": "Lithuanian",
    "lav": "Latvian", "est": "Estonian", "tam": "Tamil", "vie": "Vietnamese", "urd": "Urdu",
    "tha": "Thai", "guj": "Gujarati", "uzb": "Uzbek", "pan": "Punjabi", "aze": "Azerbaijani",
    "ind": "Indonesian", "tel": "Telugu", "pes": "Persian", "mal": "Malayalam", "ori": "Oriya",
    "mya": "Burmese", "nep": "Nepali", "sin": "Sinhalese", "khm": "Khmer", "tuk": "Turkmen",
    "aka": "Akan", "zul": "Zulu", "sna": "Shona", "afr": "Afrikaans", "lat": "Latin",
    "slk": "Slovak", "cat": "Catalan", "tgl": "Tagalog", "hye": "Armenian",
}


class SubAnalyzer(Protocol):
    def tokens(self, text: str) -> list[str]: ...

    def detailed(self, text: str) -> list[tuple[str, int, int, int]]: ...


def _confidence(spec: Any) -> float:
    """The whatlang confidence threshold of an `identifier` param (Milvus's forms and wording)."""
    if spec is None:
        return 0.0
    if isinstance(spec, str):
        kind, params = spec, {}
    elif isinstance(spec, Mapping):
        if "type" not in spec:
            raise invalid("identifier type must be set")
        if not isinstance(spec["type"], str):
            raise invalid("identifier type must be string")
        kind, params = spec["type"], spec
    else:
        raise invalid("identifier params must be string or dict")
    if kind == "lingua":
        raise not_supported("the lingua language identifier (Shoal detects languages with whatlang)")
    if kind != "whatlang":
        raise invalid(f"unknown identifier {'name' if isinstance(spec, str) else 'type'}: {kind}")
    confidence = params.get("confidence", 0.0)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise invalid("confidence must be float")
    return float(confidence)


def _detector(confidence: float) -> Callable[[str], str]:
    try:
        import whatlang
    except ImportError:
        raise not_supported(
            "the language_identifier tokenizer (the whatlang-pyo3 package is not installed: pip install 'shoal[cjk]')"
        ) from None

    def detect(text: str) -> str:
        try:
            info = whatlang.detect(text)
        except ValueError:  # no letters to go by
            return "default"
        if info.confidence <= confidence:
            return "default"
        return ENGLISH_NAMES.get(info.lang, "default")

    return detect


def language_identifier(spec: Mapping[str, Any], build: Callable[[Mapping[str, Any]], SubAnalyzer]) -> tuple[
    Callable[[str], list[str]], Callable[[str], list[tuple[str, int, int, int]]]
]:
    """(tokens, detailed) functions of the tokenizer `spec`: the chosen sub-analyzer's tokens,
    and its (token, start, end, position) tuples; `build` makes a sub-analyzer."""
    unknown = sorted(set(spec) - set(PARAMS))
    if unknown:
        raise invalid(f"language_identifier tokenizer: unknown params {unknown} (expected: identifier, analyzers, mapping)")
    confidence = _confidence(spec.get("identifier"))
    raw = spec.get("analyzers")
    if raw is None:
        raise invalid("analyzers must be set")
    if not isinstance(raw, Mapping):
        raise invalid("analyzers must be dict")
    analyzers: dict[str, SubAnalyzer] = {}
    for name, params in raw.items():
        if not isinstance(params, Mapping):
            raise invalid(f'sub analyzer "{name}" params must be dict')
        analyzers[name] = build(params)
    if "default" not in analyzers:
        raise invalid("default sub analyzer for language identifier analyzer must be set")
    mapping = spec.get("mapping", {})
    if not isinstance(mapping, Mapping) or not all(isinstance(v, str) for v in mapping.values()):
        raise invalid("mapping must be dict")
    detect = _detector(confidence)

    def pick(text: str) -> SubAnalyzer:
        language = detect(text)
        return analyzers.get(mapping.get(language, language)) or analyzers["default"]

    return lambda text: pick(text).tokens(text), lambda text: pick(text).detailed(text)
