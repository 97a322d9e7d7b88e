"""Topic filters and topic templates.

A template has one entry per topic level, separated by ``/`` like the topic itself:

    sensors/{site}/{device}/{_field}

``{name}`` makes the level's text a tag, ``{_measurement}`` names the measurement, ``{_field}``
names the field (bare-value payloads), ``+`` accepts any text and drops it, a literal must match
exactly, and a final ``#`` accepts any number of further levels. A topic that does not fit is a
bad message (reason ``topic_mismatch``), never a crash.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Names a template may give a level besides tags.
MEASUREMENT, FIELD = "_measurement", "_field"
#: Distinct topics whose template match is remembered (topics repeat; matching is per message).
MATCH_CACHE_SIZE = 4096


class TopicMismatch(ValueError):
    """A topic does not fit its subscription's template."""


def check_filter(text: str) -> None:
    """Raises ValueError naming the problem when ``text`` is not a valid MQTT topic filter."""
    if not text:
        raise ValueError("topic filter must not be empty")
    if "\0" in text:
        raise ValueError(f"topic filter {text!r} contains a NUL character")
    if len(text.encode()) > 65535:
        raise ValueError("topic filter is longer than 65535 bytes")
    levels = text.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise ValueError(f"topic filter {text!r}: '#' must be a whole level and the last one")
        if "+" in level and level != "+":
            raise ValueError(f"topic filter {text!r}: '+' must be a whole level")


def filter_matches(filter_levels: list[str], topic_levels: list[str]) -> bool:
    """MQTT matching of a split filter against a split topic ($-topics are not matched by wildcards)."""
    if topic_levels and topic_levels[0].startswith("$") and filter_levels and filter_levels[0] in "+#":
        return False
    for i, f in enumerate(filter_levels):
        if f == "#":
            return True
        if i >= len(topic_levels):
            return False
        if f != "+" and f != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)


@dataclass(frozen=True, slots=True)
class TopicMatch:
    measurement: str | None
    tags: tuple[tuple[str, str], ...]
    field: str | None


_LITERAL, _TAG, _ANY, _REST = range(4)


class TopicTemplate:
    """A parsed template; :meth:`match` maps a topic to measurement, tags and field."""

    def __init__(self, text: str, levels: list[tuple[int, str]]) -> None:
        self.text = text
        self._levels = levels
        self._has_rest = bool(levels) and levels[-1][0] == _REST
        names = [name for kind, name in levels if kind == _TAG]
        self.measurement_level = names.index(MEASUREMENT) if MEASUREMENT in names else None
        self.field_level = names.index(FIELD) if FIELD in names else None
        self._cache: dict[str, TopicMatch] = {}

    @classmethod
    def parse(cls, text: str) -> "TopicTemplate":
        """Raises ValueError naming the bad level when the template is malformed."""
        if not text:
            raise ValueError("template must not be empty")
        parts = text.split("/")
        levels: list[tuple[int, str]] = []
        seen: set[str] = set()
        for i, part in enumerate(parts):
            where = f"template {text!r}, level {i + 1} ({part!r})"
            if part == "#":
                if i != len(parts) - 1:
                    raise ValueError(f"{where}: '#' must be the last level")
                levels.append((_REST, ""))
            elif part == "+":
                levels.append((_ANY, ""))
            elif part.startswith("{") and part.endswith("}"):
                name = part[1:-1]
                if not name or any(c in name for c in "{}/+#"):
                    raise ValueError(f"{where}: a placeholder is {{name}} with a non-empty name")
                if name.startswith("_") and name not in (MEASUREMENT, FIELD):
                    raise ValueError(f"{where}: names starting with '_' are reserved "
                                     f"(only {{{MEASUREMENT}}} and {{{FIELD}}} exist)")
                if name in seen:
                    raise ValueError(f"{where}: {{{name}}} appears twice")
                seen.add(name)
                levels.append((_TAG, name))
            elif any(c in part for c in "{}+#"):
                raise ValueError(f"{where}: a level is a literal, {{name}}, '+' or '#'")
            else:
                levels.append((_LITERAL, part))
        return cls(text, levels)

    def compatibility_problem(self, topic_filter: str) -> str | None:
        """Why no topic matching ``topic_filter`` can fit this template, or None when some can."""
        flevels = topic_filter.split("/")
        f_rest = flevels[-1] == "#"
        f_fixed = flevels[:-1] if f_rest else flevels
        t_fixed = self._levels[:-1] if self._has_rest else self._levels
        if not f_rest and not self._has_rest and len(f_fixed) != len(t_fixed):
            return (f"has {len(t_fixed)} levels but topic filter {topic_filter!r} matches topics "
                    f"of {len(f_fixed)} levels")
        if not f_rest and self._has_rest and len(f_fixed) < len(t_fixed):
            return (f"needs at least {len(t_fixed)} levels but topic filter {topic_filter!r} "
                    f"matches topics of {len(f_fixed)} levels")
        for i, (kind, value) in enumerate(t_fixed):
            if i < len(f_fixed) and kind == _LITERAL and f_fixed[i] != "+" and f_fixed[i] != value:
                return (f"level {i + 1} is {value!r} but topic filter {topic_filter!r} has "
                        f"{f_fixed[i]!r} there")
        return None

    def match(self, topic: str) -> TopicMatch:
        """The topic's measurement, tags and field; raises TopicMismatch saying where it differs."""
        hit = self._cache.get(topic)
        if hit is not None:
            return hit
        result = self._match(topic)
        if len(self._cache) >= MATCH_CACHE_SIZE:
            self._cache.clear()
        self._cache[topic] = result
        return result

    def _match(self, topic: str) -> TopicMatch:
        parts = topic.split("/")
        fixed = self._levels[:-1] if self._has_rest else self._levels
        if len(parts) < len(fixed) or (not self._has_rest and len(parts) != len(fixed)):
            raise TopicMismatch(f"topic has {len(parts)} levels, template {self.text!r} "
                                f"{'needs at least' if self._has_rest else 'has'} {len(fixed)}")
        measurement = field = None
        tags = []
        for i, (kind, name) in enumerate(fixed):
            text = parts[i]
            if kind == _LITERAL:
                if text != name:
                    raise TopicMismatch(f"level {i + 1} is {text!r}, template {self.text!r} "
                                        f"expects {name!r}")
            elif kind == _TAG:
                if not text:
                    raise TopicMismatch(f"level {i + 1} is empty but template {self.text!r} "
                                        f"takes {{{name}}} from it")
                if name == MEASUREMENT:
                    measurement = text
                elif name == FIELD:
                    field = text
                else:
                    tags.append((name, text))
        return TopicMatch(measurement, tuple(tags), field)
