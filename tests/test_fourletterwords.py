"""The one table of four-letter words: the config's whitelist, the connection's detection of a
4lw and the answers all come from server.fourletterwords, and they agree."""

from __future__ import annotations

import pytest

from tests.support.ourzk import InProcessServer
from tests.support.rawclient import four_letter
from zkops.server import config, connection, fourletter, fourletterwords
from zkops.server.fourletterclient import four_letter_or_empty
from zkops.server.fourletterwords import (
    ALL_WORDS,
    APACHE_WORDS,
    DEFAULT_WORDS,
    NOT_SERVING_WORDS,
    TABLE,
    WIRE_WORDS,
)

BASE = "dataDir=/tmp/zkops-4lw-table\nclientPort=2181\n"
REFUSED = "is not executed because it is not in the whitelist."


def test_the_table_names_each_word_once_and_every_word_has_an_answer():
    assert len(ALL_WORDS) == len(set(ALL_WORDS)) == len(TABLE)
    assert all(len(w) == 4 and w.isascii() and w.islower() for w in ALL_WORDS)
    assert set(fourletter.WORDS) == set(ALL_WORDS)
    assert DEFAULT_WORDS <= APACHE_WORDS and set(ALL_WORDS) >= NOT_SERVING_WORDS
    assert set(ALL_WORDS) - APACHE_WORDS == {"elec"}


def test_the_config_whitelist_is_the_table():
    assert config.KNOWN_4LW == APACHE_WORDS
    assert set(ALL_WORDS) == config.ALL_4LW
    assert config.DEFAULT_4LW == DEFAULT_WORDS
    assert config.parse_config(f"{BASE}4lw.commands.whitelist=*\n").four_letter_words == set(ALL_WORDS)
    named = ",".join(ALL_WORDS)
    assert config.parse_config(f"{BASE}4lw.commands.whitelist={named}\n").four_letter_words == set(ALL_WORDS)
    with pytest.raises(config.ConfigError):
        config.parse_config(f"{BASE}4lw.commands.whitelist=abcd\n")


def test_the_connection_detects_the_table_words():
    assert connection.WIRE_WORDS is fourletterwords.WIRE_WORDS
    assert {w.encode() for w in ALL_WORDS} == WIRE_WORDS


@pytest.fixture(scope="module")
def every_word_allowed():
    with InProcessServer(four_letter_words=frozenset({"*"})) as s:
        yield s


@pytest.fixture(scope="module")
def default_whitelist():
    with InProcessServer(four_letter_words=DEFAULT_WORDS) as s:
        yield s


@pytest.mark.parametrize("word", ALL_WORDS)
def test_every_table_word_is_detected_and_answered(every_word_allowed, word):
    text = four_letter(every_word_allowed.address, word)
    assert REFUSED not in text
    assert text == "" if word == "elec" else text != ""  # a standalone server has no election


@pytest.mark.parametrize("word", ALL_WORDS)
def test_the_default_whitelist_answers_its_words_and_refuses_the_others(default_whitelist, word):
    text = four_letter(default_whitelist.address, word)
    if word in DEFAULT_WORDS:
        assert REFUSED not in text and text != ""
    else:
        assert text == f"{word} {REFUSED}\n"


def test_a_word_outside_the_table_is_not_a_four_letter_word(every_word_allowed):
    host, port = every_word_allowed.address.rsplit(":", 1)
    assert four_letter_or_empty(host, int(port), "abcd", 5.0) == ""
    assert four_letter(every_word_allowed.address, "ruok") == "imok"  # the server served on
