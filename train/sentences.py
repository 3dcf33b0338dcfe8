"""Seeded sentence generator for the synthetic corpus: word lists x templates.

Latin-script voices read English (each engine applies its own language's letter-to-sound rules,
which is fine for speaker identity). Cyrillic voices (Russian, Ukrainian, Kyrgyz, Tatar,
Macedonian) read Russian built only from letters all five alphabets share, so no voice meets a
letter it cannot pronounce. Two-clause sentences give a space of ~10^12, so seeded draws for a
few thousand utterances do not repeat.
"""

from __future__ import annotations

import numpy as np

_EN = {
    "det": ["the", "a", "my", "our", "that", "one", "every", "her", "his", "their"],
    "adj": ["old", "quiet", "young", "clever", "tired", "happy", "careful", "busy", "brave", "gentle", "proud",
            "honest", "curious", "patient", "friendly", "strict", "cheerful", "nervous", "famous", "lonely"],
    "noun": ["farmer", "teacher", "baker", "sailor", "doctor", "painter", "driver", "neighbour", "student", "captain",
             "gardener", "musician", "pilot", "writer", "soldier", "tailor", "fisherman", "singer", "miner", "nurse"],
    "verb": ["carried", "painted", "opened", "repaired", "found", "sold", "bought", "cleaned", "wrapped", "lifted",
             "counted", "moved", "borrowed", "delivered", "washed", "measured", "hid", "dropped", "ordered", "checked"],
    "obj": ["a wooden box", "the heavy basket", "two blue chairs", "a silver spoon", "the broken window",
            "seven letters", "a long rope", "the red bicycle", "three bottles", "a small drum", "the green door",
            "five candles", "an iron kettle", "the paper map", "a warm blanket", "the garden gate", "four lamps",
            "a bag of apples", "the old clock", "a pair of boots"],
    "place": ["near the river", "in the kitchen", "at the station", "behind the school", "on the bridge",
              "by the harbour", "in the market", "under the tree", "at the farm", "across the street",
              "inside the barn", "on the hill", "next to the church", "in the village", "at the corner shop"],
    "time": ["this morning", "before noon", "after dinner", "last winter", "on Sunday", "every evening",
             "at midnight", "yesterday", "in the spring", "later that day", "once again", "at dawn"],
    "link": ["and then", "but later", "while", "because", "so", "and afterwards", "before", "after"],
}

_RU = {
    "subj": ["мастер", "доктор", "садовник", "капитан", "студент", "артист", "повар", "фермер", "пастух", "шофер",
             "сосед", "брат", "дед", "профессор", "инженер", "матрос", "кузнец", "охотник", "портной", "почтальон"],
    "adv": ["утром", "вечером", "летом", "вчера", "тихо", "громко", "медленно", "долго", "снова", "почти",
            "часто", "рано", "поздно", "сразу", "наконец"],
    "verb": ["нашел", "купил", "видел", "строил", "продал", "принес", "забрал", "поставил", "починил", "искал",
             "рисовал", "читал", "украсил", "поймал", "собрал", "передал", "показал", "отдал", "получил", "заказал"],
    "obj": ["стол", "мост", "торт", "билет", "подарок", "замок", "платок", "пирог", "сахар", "телефон",
            "карандаш", "компот", "забор", "чемодан", "стакан", "ковер", "мешок", "кувшин", "топор", "молоток"],
    "place": ["на берегу", "в городе", "около дома", "за мостом", "под столом", "возле парка", "у забора",
              "в саду", "на острове", "в поезде", "на заводе", "в магазине", "в лесу", "на вокзале", "за городом"],
    "link": ["а потом", "и снова", "но затем", "и после обеда", "а вечером", "и тогда"],
}

SCRIPTS = ("latin", "cyrillic")


def _pick(rng: np.random.Generator, words: list[str]) -> str:
    return words[int(rng.integers(len(words)))]


def _en_clause(rng: np.random.Generator, long: bool) -> str:
    w = _EN
    subject = f"{_pick(rng, w['det'])} {_pick(rng, w['adj'])} {_pick(rng, w['noun'])}"
    clause = f"{subject} {_pick(rng, w['verb'])} {_pick(rng, w['obj'])} {_pick(rng, w['place'])}"
    return f"{clause} {_pick(rng, w['time'])}" if long else clause


def _ru_clause(rng: np.random.Generator, long: bool) -> str:
    w = _RU
    clause = f"{_pick(rng, w['subj'])} {_pick(rng, w['adv'])} {_pick(rng, w['verb'])} {_pick(rng, w['obj'])}"
    return f"{clause} {_pick(rng, w['place'])}" if long else clause


def sentence(rng: np.random.Generator, script: str, size: int) -> str:
    """One sentence; `size` 0 (short, ~2 s) .. 3 (long, ~5-6 s) at normal speaking rate."""
    if script not in SCRIPTS:
        raise ValueError(f"script must be one of {SCRIPTS}, got {script!r}")
    clause = _en_clause if script == "latin" else _ru_clause
    links = _EN["link"] if script == "latin" else _RU["link"]
    first = clause(rng, long=size >= 1)
    if size >= 2:
        first = f"{first}, {_pick(rng, links)} {clause(rng, long=size >= 3)}"
    return first[0].upper() + first[1:] + "."
