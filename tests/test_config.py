"""zoo.cfg parsing: Apache's keys and defaults, errors that name key and line, server lines."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server.config import DEFAULT_4LW, ConfigError, PeerSpec, load_config, parse_config, render_config


def test_defaults_follow_the_tick():
    cfg = parse_config("tickTime=3000\ndataDir=/d\nclientPort=2181\n")
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (6000, 60000)
    assert cfg.data_log_dir == Path("/d") and cfg.four_letter_words == DEFAULT_4LW
    assert cfg.autopurge_purge_interval == 24 and cfg.force_sync and not cfg.is_ensemble


@pytest.mark.parametrize("text, words", [
    ("clientPort=70000", ["clientPort", ":2", "1-65535"]),
    ("tickTime=abc", ["tickTime", ":2", "whole number"]),
    ("maxSessionTimeout=1000", ["maxSessionTimeout", "minSessionTimeout"]),
    ("4lw.commands.whitelist=ruok,boom", ["boom"]),
    ("forceSync=maybe", ["forceSync", "yes or no"]),
])
def test_bad_values_name_the_key_and_line(text, words):
    with pytest.raises(ConfigError) as exc:
        parse_config(f"dataDir=/d\n{text}\nclientPort=1\n" if "clientPort" not in text else f"dataDir=/d\n{text}\n",
                     "zoo.cfg")
    for w in words:
        assert w in str(exc.value)


def test_missing_data_dir_says_what_to_add():
    with pytest.raises(ConfigError, match="dataDir"):
        parse_config("clientPort=2181\n")


def test_unknown_keys_warn_and_jvm_keys_are_quiet():
    cfg = parse_config("dataDir=/d\nclientPort=1\nfooBar=1\nserverCnxnFactory=org.x.Netty\n")
    assert len(cfg.warnings) == 1 and "fooBar" in cfg.warnings[0]


def test_server_lines_all_forms(tmp_path):
    (tmp_path / "myid").write_text("2\n")
    cfg = parse_config(
        f"dataDir={tmp_path}\n"
        "server.1=zk1:2888:3888\n"
        "server.2=10.0.0.2:2889:3889:participant;0.0.0.0:2182\n"
        "server.3=[::1]:2890:3890:observer;2183\n", "zoo.cfg")
    assert cfg.servers[1] == PeerSpec(1, "zk1", 2888, 3888, "participant", None, None)
    assert cfg.servers[2] == PeerSpec(2, "10.0.0.2", 2889, 3889, "participant", "0.0.0.0", 2182)
    assert cfg.servers[3] == PeerSpec(3, "::1", 2890, 3890, "observer", None, 2183)
    assert cfg.my_id == 2 and cfg.client_port == 2182 and cfg.is_ensemble


def test_myid_missing_or_unknown_is_an_error(tmp_path):
    text = f"dataDir={tmp_path}\nserver.1=a:1:2\nserver.2=b:1:2\n"
    with pytest.raises(ConfigError, match="myid"):
        parse_config(text)
    (tmp_path / "myid").write_text("7")
    with pytest.raises(ConfigError, match="matches no server"):
        parse_config(text)


def test_jvm_flags_fill_in_but_zoo_cfg_wins(monkeypatch):
    monkeypatch.setenv("SERVER_JVMFLAGS", "-Djute.maxbuffer=4096 -Dzookeeper.extendedTypesEnabled=true")
    cfg = parse_config("dataDir=/d\nclientPort=1\njute.maxbuffer=8192\n")
    assert cfg.jute_maxbuffer == 8192 and cfg.extended_types_enabled


def test_load_config_resolves_relative_data_dir(tmp_path):
    (tmp_path / "zoo.cfg").write_text("dataDir=data\nclientPort=2181\n")
    assert load_config(tmp_path / "zoo.cfg").data_dir == tmp_path / "data"


@settings(max_examples=100, deadline=None)
@given(tick=st.integers(1, 10000), port=st.integers(1, 65535), snap=st.integers(1, 10**6),
       retain=st.integers(3, 50), words=st.sets(st.sampled_from(sorted(DEFAULT_4LW)), min_size=1),
       force=st.booleans(), ext=st.booleans())
def test_render_then_parse_round_trips(tick, port, snap, retain, words, force, ext):
    cfg = parse_config(f"dataDir=/d\nclientPort={port}\ntickTime={tick}\nsnapCount={snap}\n"
                       f"autopurge.snapRetainCount={retain}\n4lw.commands.whitelist={','.join(sorted(words))}\n"
                       f"forceSync={'yes' if force else 'no'}\nextendedTypesEnabled={str(ext).lower()}\n")
    again = parse_config(render_config(cfg))
    for attr in ("tick_time", "client_port", "snap_count", "autopurge_snap_retain_count", "four_letter_words",
                 "force_sync", "extended_types_enabled", "min_session_timeout", "max_session_timeout"):
        assert getattr(again, attr) == getattr(cfg, attr), attr
