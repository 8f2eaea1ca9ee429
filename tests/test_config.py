"""zoo.cfg parsing: Java properties syntax, every key and default, errors that name key and line,
server lines, myid, JVM -D fallbacks, and render_config round trips (also against Apache's parser)."""

from __future__ import annotations

import base64
import copy
import logging
import random
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zkops.server.config import (
    ALL_4LW,
    DEFAULT_4LW,
    KNOWN_4LW,
    ConfigError,
    PeerSpec,
    ServerConfig,
    java_trim,
    load_config,
    parse_config,
    parse_server_line,
    read_properties,
    render_config,
)

BASE = "dataDir=/d\nclientPort=2181\n"


def parse(text: str, **kw) -> ServerConfig:
    """Parse with no JVM flags from the test runner's environment."""
    kw.setdefault("environ", {})
    return parse_config(text, **kw)


def error(text: str, **kw) -> str:
    with pytest.raises(ConfigError) as exc:
        parse(text, **kw)
    msg = str(exc.value)
    assert "\n" not in msg
    return msg


# ------------------------------------------------------------------ syntax
def test_java_properties_separators_comments_and_whitespace():
    rows = read_properties("a=1\n  b : 2\nc 3\n# x=1\n  ! y=2\n\n\td\t=\t4  \ne=\nf\n")
    assert rows == [(1, "a", "1"), (2, "b", "2"), (3, "c", "3"), (7, "d", "4"), (8, "e", ""), (9, "f", "")]


def test_continuation_lines_escapes_and_line_endings():
    text = "\ufeffk1=one \\\n    two\r\nk\\=2=a\\tb\\u0041\\\\c\rk\\ 3 = x\\\\\n# comment \\\nk4=\\#not comment\n"
    rows = read_properties(text)
    assert rows == [(1, "k1", "one two"), (3, "k=2", "a\tbA\\c"), (4, "k 3", "x\\"), (6, "k4", "#not comment")]
    # an even number of trailing backslashes is no continuation; a surrogate pair joins up
    assert read_properties("a=b\\\\\nc=\\ud83d\\ude00") == [(1, "a", "b\\"), (2, "c", "\U0001F600")]


def test_malformed_unicode_escape_names_the_line():
    with pytest.raises(ConfigError, match=r"zoo.cfg:2: malformed \\uxxxx"):
        read_properties("a=1\nb=\\u12g4\n", "zoo.cfg")


def test_repeated_key_last_wins_with_a_warning():
    cfg = parse("dataDir=/d\nclientPort=1\ntickTime=100\nclientPort=2\n")
    assert cfg.client_port == 2
    assert cfg.warnings == ["zoo.cfg:4: clientPort is set again; the value on line 2 is ignored"]


def test_values_are_trimmed_like_java_trim():
    assert java_trim("\x00 \t x y \x1f") == "x y"
    assert parse("dataDir = /d   \nclientPort:\t2181\t\n").data_dir == Path("/d")


# ------------------------------------------------------------------ defaults
def test_defaults_of_a_minimal_config():
    cfg = parse(BASE)
    assert cfg == ServerConfig(source=Path("zoo.cfg"), data_dir=Path("/d"), data_log_dir=Path("/d"),
                               client_port=2181, min_session_timeout=4000, max_session_timeout=40000,
                               raw={"dataDir": "/d", "clientPort": "2181"})
    assert cfg.four_letter_words == DEFAULT_4LW
    assert cfg.autopurge_purge_interval == 24  # on by default, unlike Apache ZooKeeper
    assert cfg.warnings == [] and not cfg.is_ensemble and cfg.my_id is None


def test_default_4lw_is_the_documented_set():
    default = {"ruok", "srvr", "stat", "mntr", "conf", "isro", "envi", "dirs", "cons", "wchs"}
    known = default | {"crst", "srst", "wchc", "wchp", "dump", "gtmk", "stmk"}
    assert default == DEFAULT_4LW and known == KNOWN_4LW and known | {"elec"} == ALL_4LW


@pytest.mark.parametrize("tick, lo, hi", [(2000, 4000, 40000), (3000, 6000, 60000), (1, 2, 20)])
def test_session_timeouts_follow_the_tick(tick, lo, hi):
    cfg = parse(f"{BASE}tickTime={tick}\n")
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (lo, hi)


def test_session_timeouts_explicit_and_minus_one():
    cfg = parse(f"{BASE}minSessionTimeout=1000\nmaxSessionTimeout=90000\n")
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (1000, 90000)
    cfg = parse(f"{BASE}tickTime=500\nminSessionTimeout=-1\nmaxSessionTimeout=-1\n")
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (1000, 10000)
    assert parse(f"{BASE}minSessionTimeout=0\n").min_session_timeout == 0  # explicit 0 is kept, as ZooKeeper


# every key we read: zoo.cfg line -> attribute -> value
KEYS = [
    ("tickTime=3000", "tick_time", 3000),
    ("initLimit=20", "init_limit", 20),
    ("syncLimit=7", "sync_limit", 7),
    ("dataLogDir=/logs", "data_log_dir", Path("/logs")),
    ("clientPortAddress=127.0.0.1", "client_port_address", "127.0.0.1"),
    ("clientPortAddress=[::1]", "client_port_address", "::1"),
    ("secureClientPort=2281", "secure_client_port", 2281),
    ("maxClientCnxns=0", "max_client_cnxns", 0),
    ("snapCount=5000", "snap_count", 5000),
    ("autopurge.snapRetainCount=7", "autopurge_snap_retain_count", 7),
    ("autopurge.purgeInterval=0", "autopurge_purge_interval", 0),
    ("4lw.commands.whitelist=ruok, mntr", "four_letter_words", {"ruok", "mntr", "srvr"}),
    ("4lw.commands.whitelist=*", "four_letter_words", ALL_4LW),
    ("4lw.commands.whitelist=", "four_letter_words", {"srvr"}),
    ("extendedTypesEnabled=true", "extended_types_enabled", True),
    ("zookeeper.extendedTypesEnabled=TRUE", "extended_types_enabled", True),
    ("jute.maxbuffer=4194304", "jute_maxbuffer", 4194304),
    ("jute.maxbuffer=0x400000", "jute_maxbuffer", 0x400000),
    ("forceSync=no", "force_sync", False),
    ("forceSync=yes", "force_sync", True),
    ("zookeeper.forceSync=no", "force_sync", False),
    ("preAllocSize=1024", "pre_alloc_size_kb", 1024),
    ("globalOutstandingLimit=5000", "global_outstanding_limit", 5000),
    ("znode.container.checkIntervalMs=1000", "container_check_interval_ms", 1000),
    ("peerType=observer", "peer_type", "observer"),
    ("peerType=Observer", "peer_type", "observer"),
    ("standaloneEnabled=false", "standalone_enabled", False),
    ("reconfigEnabled=true", "reconfig_enabled", True),
    ("readonlymode.enabled=true", "readonly_mode_enabled", True),
    ("digest.enabled=false", "digest_enabled", False),
    ("zookeeper.digest.enabled=false", "digest_enabled", False),
    ("localSessionsEnabled=true", "local_sessions_enabled", True),
    ("localSessionsUpgradingEnabled=true", "local_sessions_upgrading_enabled", True),
    ("DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=", "super_digest",
     "super:D/InIHSb7yEEbrWz8b9l71RjZJU="),
    ("zookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=", "super_digest",
     "super:D/InIHSb7yEEbrWz8b9l71RjZJU="),
    ("admin.enableServer=false", "admin_enable_server", False),
    ("admin.serverAddress=127.0.0.1", "admin_server_address", "127.0.0.1"),
    ("admin.serverPort=9090", "admin_server_port", 9090),
    ("metricsProvider.httpPort=7000", "metrics_port", 7000),
    ("electionAlg=3", "election_alg", 3),
    ("maxCnxns=100", "max_cnxns", 100),
]


@pytest.mark.parametrize("line, attr, value", KEYS, ids=[k[0] for k in KEYS])
def test_every_key(line, attr, value):
    cfg = parse(f"{BASE}{line}\n")
    assert getattr(cfg, attr) == value
    assert cfg.warnings == []
    key, _, text = line.partition("=")
    assert cfg.raw[key] == text


def test_data_dir_and_log_dir_paths():
    cfg = parse("dataDir=data\ndataLogDir=logs\nclientPort=1\n", base_dir=Path("/srv/zk"))
    assert (cfg.data_dir, cfg.data_log_dir) == (Path("/srv/zk/data"), Path("/srv/zk/logs"))
    cfg = parse("dataDir=data\nclientPort=1\n")
    assert cfg.data_dir == cfg.data_log_dir == Path("data")  # relative to the working directory


def test_load_config_resolves_relative_paths_from_the_file(tmp_path):
    (tmp_path / "zoo.cfg").write_text("dataDir=data\nclientPort=2181\n")
    cfg = load_config(tmp_path / "zoo.cfg")
    assert cfg.data_dir == tmp_path / "data" and cfg.source == tmp_path / "zoo.cfg"


def test_load_config_missing_file():
    with pytest.raises(ConfigError, match="/nonexistent/zoo.cfg: cannot read the config file"):
        load_config(Path("/nonexistent/zoo.cfg"))


def test_small_retain_and_snap_counts_are_raised_with_a_warning():
    cfg = parse(f"{BASE}autopurge.snapRetainCount=1\nsnapCount=1\n")
    assert (cfg.autopurge_snap_retain_count, cfg.snap_count) == (3, 2)
    assert cfg.warnings == ["zoo.cfg:3: autopurge.snapRetainCount=1 is below 3; using 3",
                            "zoo.cfg:4: snapCount=1 is below 2; using 2"]


def test_srvr_is_always_allowed_and_isro_with_read_only_mode():
    assert parse(f"{BASE}4lw.commands.whitelist=ruok\n").four_letter_words == {"ruok", "srvr"}
    cfg = parse(f"{BASE}4lw.commands.whitelist=ruok\nreadonlymode.enabled=true\n")
    assert cfg.four_letter_words == {"ruok", "srvr", "isro"}


# ------------------------------------------------------------------ errors
ERRORS = [
    # (lines after dataDir=/d, words the message must contain)
    ("clientPort=abc", ["zoo.cfg:2", "clientPort=abc", "not a port", "between 1 and 65535"]),
    ("clientPort=70000", ["zoo.cfg:2", "clientPort=70000", "outside 1-65535", "between 1 and 65535"]),
    ("clientPort=0", ["zoo.cfg:2", "clientPort=0", "outside 1-65535"]),
    ("clientPort=1\nsecureClientPort=-5", ["zoo.cfg:3", "secureClientPort", "between 1 and 65535"]),
    ("clientPort=1\nadmin.serverPort=65536", ["zoo.cfg:3", "admin.serverPort", "outside 1-65535"]),
    ("clientPort=1\nmetricsProvider.httpPort=x", ["zoo.cfg:3", "metricsProvider.httpPort"]),
    ("clientPort=1\ntickTime=abc", ["zoo.cfg:3", "tickTime=abc", "not a whole number", "tickTime=2000"]),
    ("clientPort=1\ntickTime=2.5", ["zoo.cfg:3", "tickTime", "whole number"]),
    ("clientPort=1\ntickTime=0", ["zoo.cfg:3", "tickTime=0", "at least 1"]),
    ("clientPort=1\ntickTime=-2000", ["zoo.cfg:3", "tickTime=-2000", "at least 1"]),
    ("clientPort=1\ntickTime=", ["zoo.cfg:3", "tickTime=(empty)", "whole number"]),
    ("clientPort=1\ninitLimit=1_0", ["zoo.cfg:3", "initLimit", "whole number"]),
    ("clientPort=1\nsnapCount=99999999999", ["zoo.cfg:3", "snapCount", "at most 2147483647"]),
    ("clientPort=1\nmaxClientCnxns=-1", ["zoo.cfg:3", "maxClientCnxns=-1", "at least 0"]),
    ("clientPort=1\nminSessionTimeout=-2", ["zoo.cfg:3", "minSessionTimeout", "at least -1"]),
    ("clientPort=1\nautopurge.purgeInterval=-1", ["zoo.cfg:3", "autopurge.purgeInterval", "at least 0"]),
    ("clientPort=1\nmaxSessionTimeout=1000", ["zoo.cfg:3", "maxSessionTimeout=1000", "minSessionTimeout=4000",
                                              "2 x tickTime", "min <= max"]),
    ("clientPort=1\nminSessionTimeout=9000\nmaxSessionTimeout=8000",
     ["zoo.cfg:4", "maxSessionTimeout=8000", "minSessionTimeout=9000 (line 3)"]),
    ("clientPort=1\nminSessionTimeout=50000", ["zoo.cfg", "maxSessionTimeout=40000 (20 x tickTime)",
                                               "minSessionTimeout=50000 (line 3)"]),
    ("clientPort=1\n4lw.commands.whitelist=ruok,boom", ["zoo.cfg:3", "4lw.commands.whitelist", "boom", "ruok"]),
    ("clientPort=1\n4lw.commands.whitelist=RUOK", ["zoo.cfg:3", "RUOK"]),
    ("clientPort=1\nforceSync=maybe", ["zoo.cfg:3", "forceSync=maybe", "yes", "no"]),
    ("clientPort=1\nstandaloneEnabled=yes", ["zoo.cfg:3", "standaloneEnabled=yes", "true or false"]),
    ("clientPort=1\nextendedTypesEnabled=1", ["zoo.cfg:3", "extendedTypesEnabled", "true or false"]),
    ("clientPort=1\npeerType=leader", ["zoo.cfg:3", "peerType=leader", "participant or observer"]),
    ("clientPort=1\nelectionAlg=0", ["zoo.cfg:3", "electionAlg=0", "electionAlg=3"]),
    ("clientPort=1\nDigestAuthenticationProvider.superDigest=super:secret",
     ["zoo.cfg:3", "superDigest", "BASE64(SHA1"]),
    ("clientPort=1\nclientPortAddress=my host", ["zoo.cfg:3", "clientPortAddress", "host name"]),
    ("clientPort=1\ndataLogDir=", ["zoo.cfg:3", "dataLogDir", "directory"]),
    ("clientPortAddress=127.0.0.1", ["zoo.cfg:2", "clientPortAddress is set but clientPort is not",
                                     "clientPort=2181"]),
    ("tickTime=2000", ["clientPort is not set", "clientPort=2181"]),
    ("clientPort=1\nserver.x=a:1:2", ["zoo.cfg:3", "server.x", "server id", "server.1"]),
    ("clientPort=1\nserver.-1=a:1:2", ["zoo.cfg:3", "server.-1", "server id"]),
    ("clientPort=1\nserver.256=a:1:2", ["zoo.cfg:3", "server.256", "0-255"]),
    ("clientPort=1\nserver.1=a:2888", ["zoo.cfg:3", "server.1=a:2888", "host:quorumPort:electionPort"]),
    ("clientPort=1\nserver.1=:2888:3888", ["zoo.cfg:3", "server.1", "host:quorumPort"]),
    ("clientPort=1\nserver.1=a:2888:3888:participant:x", ["zoo.cfg:3", "server.1", "cannot read"]),
    ("clientPort=1\nserver.1=a:x:3888", ["zoo.cfg:3", "server.1 quorum port=x", "between 1 and 65535"]),
    ("clientPort=1\nserver.1=a:2888:99999", ["zoo.cfg:3", "server.1 election port=99999", "outside"]),
    ("clientPort=1\nserver.1=a:2888:2888", ["zoo.cfg:3", "server.1", "both 2888", "must differ"]),
    ("clientPort=1\nserver.1=a:2888:3888:boss", ["zoo.cfg:3", "server.1", "'boss'", ":observer"]),
    ("clientPort=1\nserver.1=a:2888:3888;x:y:2181", ["zoo.cfg:3", "server.1", "client address"]),
    ("clientPort=1\nserver.1=a:2888:3888;2181;2182", ["zoo.cfg:3", "server.1", "more than one ';'"]),
    ("clientPort=1\nserver.1=a:2888:3888;0", ["zoo.cfg:3", "server.1 client port=0", "outside"]),
    ("clientPort=1\nserver.1=[::1:2888:3888", ["zoo.cfg:3", "server.1", "no ']'"]),
    ("clientPort=1\nserver.1=[::1]2888:3888", ["zoo.cfg:3", "server.1", "after ']'"]),
    ("clientPort=1\nserver.1=a:2888:3888|b:2888:3888", ["zoo.cfg:3", "server.1", "multiAddress"]),
    ("clientPort=1\nserver.1=a:1:2:observer", ["observers but no participant"]),
    ("clientPort=1\nserver.1=a:1:2\nserver.2=b:1:2:observer", ["one participant with observers",
                                                               "standaloneEnabled=false"]),
    ("clientPort=1\nstandaloneEnabled=false\nserver.1=a:1:2:observer", ["standaloneEnabled=false",
                                                                        "participant"]),
]


@pytest.mark.parametrize("lines, words", ERRORS, ids=[e[0].splitlines()[-1] for e in ERRORS])
def test_bad_values_name_the_key_the_line_and_the_fix(lines, words):
    msg = error(f"dataDir=/d\n{lines}\n")
    for w in words:
        assert w in msg, (w, msg)


def test_missing_data_dir_says_what_to_add():
    assert error("clientPort=2181\n") == "zoo.cfg: dataDir is not set: add a line such as dataDir=/var/lib/zookeeper"


def test_error_messages_name_the_real_file(tmp_path):
    (tmp_path / "zoo.cfg").write_text("dataDir=d\n\nclientPort=99999\n")
    with pytest.raises(ConfigError, match=f"^{tmp_path}/zoo.cfg:3: clientPort=99999"):
        load_config(tmp_path / "zoo.cfg")


# ------------------------------------------------------------------ warnings
def test_unknown_keys_warn_with_a_suggestion():
    cfg = parse(f"{BASE}clientport=3\nfooBar=1\ntickTim=100\n")
    assert cfg.warnings == ["zoo.cfg:3: unknown key 'clientport' ignored (did you mean clientPort?)",
                            "zoo.cfg:4: unknown key 'fooBar' ignored (keys are case-sensitive)",
                            "zoo.cfg:5: unknown key 'tickTim' ignored (did you mean tickTime?)"]
    assert cfg.raw["fooBar"] == "1"


def test_jvm_only_keys_are_a_debug_note_not_a_warning(caplog):
    keys = ["serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
            "ssl.keyStore.location=/k.jks", "sslQuorum=false", "quorum.auth.enableSasl=false",
            "metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider",
            "metricsProvider.exportJvmInfo=true", "quorumListenOnAllIPs=true", "zookeeper.something=1",
            "jvm.pause.monitor=true", "admin.commandURL=/commands", "audit.enable=true", "syncEnabled=true",
            "secureClientPortAddress=0.0.0.0", "clientPortListenBacklog=100"]
    with caplog.at_level(logging.DEBUG, logger="zkops.server.config"):
        cfg = parse(BASE + "\n".join(keys) + "\n")
    assert cfg.warnings == []
    assert len([r for r in caplog.records if "only matters to the JVM server" in r.getMessage()]) == len(keys)


def test_unsupported_features_warn_by_name():
    cfg = parse(f"{BASE}skipACL=yes\nsnapSizeLimitInKb=100\n")
    assert cfg.warnings == ["zoo.cfg:3: skipACL is not supported by zkops (ACLs are always checked); ignored",
                            "zoo.cfg:4: snapSizeLimitInKb is not supported by zkops (snapshots are never skipped "
                            "for size); ignored"]


# ------------------------------------------------------------------ server lines
@pytest.mark.parametrize("value, spec", [
    ("zk1:2888:3888", PeerSpec(1, "zk1", 2888, 3888, "participant", None, None)),
    ("zk1:2888:3888:participant", PeerSpec(1, "zk1", 2888, 3888, "participant", None, None)),
    ("zk1:2888:3888:observer", PeerSpec(1, "zk1", 2888, 3888, "observer", None, None)),
    ("zk1:2888:3888:OBSERVER", PeerSpec(1, "zk1", 2888, 3888, "observer", None, None)),
    (" zk1 : 2888 : 3888 ", PeerSpec(1, " zk1 ", 2888, 3888, "participant", None, None)),
    ("zk1:2888:3888;2181", PeerSpec(1, "zk1", 2888, 3888, "participant", None, 2181)),
    ("zk1:2888:3888:observer;2181", PeerSpec(1, "zk1", 2888, 3888, "observer", None, 2181)),
    ("zk1:2888:3888;0.0.0.0:2181", PeerSpec(1, "zk1", 2888, 3888, "participant", "0.0.0.0", 2181)),
    ("10.0.0.1:2888:3888:participant;10.0.0.1:2181",
     PeerSpec(1, "10.0.0.1", 2888, 3888, "participant", "10.0.0.1", 2181)),
    ("[2001:db8::1]:2888:3888", PeerSpec(1, "2001:db8::1", 2888, 3888, "participant", None, None)),
    ("[::1]:2888:3888:observer;[::1]:2181", PeerSpec(1, "::1", 2888, 3888, "observer", "::1", 2181)),
    ("zk1:2888:3888;", PeerSpec(1, "zk1", 2888, 3888, "participant", None, None)),
])
def test_server_line_forms(value, spec):
    if value.startswith(" "):  # spaces inside are not trimmed by ZooKeeper either: only the ports are
        with pytest.raises(ConfigError, match="host"):
            parse_server_line(1, value)
        return
    assert parse_server_line(1, value) == spec


def test_ensemble_with_observer_and_client_addresses(tmp_path):
    (tmp_path / "myid").write_text("2\n")
    cfg = parse(
        f"dataDir={tmp_path}\n"
        "server.1=zk1:2888:3888\n"
        "server.2=10.0.0.2:2889:3889:participant;0.0.0.0:2182\n"
        "server.3=zk3:2890:3890\n"
        "server.4=[::1]:2891:3891:observer;2183\n")
    assert cfg.servers[2] == PeerSpec(2, "10.0.0.2", 2889, 3889, "participant", "0.0.0.0", 2182)
    assert cfg.servers[4] == PeerSpec(4, "::1", 2891, 3891, "observer", None, 2183)
    assert sorted(cfg.voters) == [1, 2, 3] and sorted(cfg.observers) == [4]
    assert cfg.my_id == 2 and cfg.client_port == 2182 and cfg.client_port_address == "0.0.0.0"
    assert cfg.is_ensemble and cfg.peer_type == "participant" and cfg.warnings == []


def test_observer_role_comes_from_its_server_line(tmp_path):
    (tmp_path / "myid").write_text("4")
    lines = "".join(f"server.{i}=h{i}:2888:3888\n" for i in (1, 2, 3)) + "server.4=h4:2888:3888:observer\n"
    cfg = parse(f"dataDir={tmp_path}\nclientPort=2181\n{lines}")
    assert cfg.peer_type == "observer" and cfg.is_ensemble
    cfg = parse(f"dataDir={tmp_path}\nclientPort=2181\npeerType=participant\n{lines}")
    assert cfg.peer_type == "observer"
    assert cfg.warnings == ["zoo.cfg:3: peerType=participant but server.4 is a observer; using observer from "
                            "the server line"]


def test_client_address_on_the_server_line_wins(tmp_path):
    (tmp_path / "myid").write_text("1")
    cfg = parse(f"dataDir={tmp_path}\nclientPortAddress=10.1.1.1\nclientPort=2181\n"
                "server.1=a:1:2;127.0.0.1:2181\nserver.2=b:1:2;2181\nserver.3=c:1:2\n")
    assert (cfg.client_port, cfg.client_port_address) == (2181, "127.0.0.1")
    assert "using the server line" in cfg.warnings[0]
    msg = error(f"dataDir={tmp_path}\nclientPort=2000\nserver.1=a:1:2;2181\nserver.2=b:1:2\n")
    assert "zoo.cfg:2: clientPort=2000 but server.1 says ;2181" in msg


def test_client_port_only_on_the_server_line(tmp_path):
    (tmp_path / "myid").write_text("3")
    cfg = parse(f"dataDir={tmp_path}\nserver.1=a:1:2;2181\nserver.2=b:1:2;2182\nserver.3=c:1:2;2183\n")
    assert cfg.client_port == 2183
    msg = error(f"dataDir={tmp_path}\nserver.1=a:1:2;2181\nserver.2=b:1:2;2182\nserver.3=c:1:2\n")
    assert "clientPort is not set" in msg and "server.3" in msg


@pytest.mark.parametrize("lines, ensemble", [
    ("server.1=a:1:2", False),  # one participant: standalone, as ZooKeeper
    ("standaloneEnabled=false\nserver.1=a:1:2", True),
    ("server.1=a:1:2\nserver.2=b:1:2", True),
    ("server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2:observer", True),
])
def test_is_ensemble(tmp_path, lines, ensemble):
    (tmp_path / "myid").write_text("1")
    assert parse(f"dataDir={tmp_path}\nclientPort=2181\n{lines}\n").is_ensemble is ensemble


def test_quorum_size_warnings(tmp_path):
    (tmp_path / "myid").write_text("1")
    two = parse(f"dataDir={tmp_path}\nclientPort=1\nserver.1=a:1:2\nserver.2=b:1:2\n")
    assert two.warnings == ["zoo.cfg: 2 participants tolerate no server failure; use at least 3"]
    four = parse(f"dataDir={tmp_path}\nclientPort=1\n" + "".join(f"server.{i}=h:1:2\n" for i in range(1, 5)))
    assert "consider an odd number" in four.warnings[0]
    one = parse(f"dataDir={tmp_path}\nclientPort=1\nserver.1=a:1:2\n")
    assert "only one server.N participant: running standalone" in one.warnings[0]


def test_hierarchical_quorum_lines_warn(tmp_path):
    (tmp_path / "myid").write_text("1")
    cfg = parse(f"dataDir={tmp_path}\nclientPort=1\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n"
                "group.1=1:2:3\nweight.1=1\n")
    assert any("hierarchical quorums" in w for w in cfg.warnings)


# ------------------------------------------------------------------ myid
def test_myid_missing_not_numeric_or_unknown(tmp_path):
    text = f"dataDir={tmp_path}\nclientPort=1\nserver.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n"
    msg = error(text)
    assert f"{tmp_path}/myid: myid file is missing" in msg and "one of 1, 2, 3" in msg
    assert f"echo 1 > {tmp_path}/myid" in msg
    (tmp_path / "myid").write_text("one\n")
    assert "myid 'one' is not a number" in error(text)
    (tmp_path / "myid").write_text("7")
    assert "myid 7 matches no server.N line" in error(text) and "ids: 1, 2, 3" in error(text)
    (tmp_path / "myid").write_text(" 3 \n")
    assert parse(text).my_id == 3


def test_myid_is_optional_for_a_standalone_server_line(tmp_path):
    cfg = parse(f"dataDir={tmp_path}\nclientPort=2181\nserver.1=a:1:2\n")
    assert cfg.my_id is None and not cfg.is_ensemble
    (tmp_path / "myid").write_text("9")
    cfg = parse(f"dataDir={tmp_path}\nclientPort=2181\nserver.1=a:1:2\n")
    assert any("myid 9 matches no server.N line" in w for w in cfg.warnings)


def test_myid_not_read_without_server_lines(tmp_path):
    (tmp_path / "myid").write_text("garbage")
    assert parse(f"dataDir={tmp_path}\nclientPort=2181\n").my_id is None


def test_ensemble_needs_init_and_sync_limits(tmp_path):
    (tmp_path / "myid").write_text("1")
    servers = "server.1=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n"
    assert "zoo.cfg:3: initLimit=0" in error(f"dataDir={tmp_path}\nclientPort=1\ninitLimit=0\n{servers}")
    assert "zoo.cfg:3: syncLimit=0" in error(f"dataDir={tmp_path}\nclientPort=1\nsyncLimit=0\n{servers}")
    assert parse(f"{BASE}initLimit=0\nsyncLimit=0\n").init_limit == 0  # standalone: unused


def test_server_id_255_cannot_use_extended_types(tmp_path):
    (tmp_path / "myid").write_text("255")
    text = f"dataDir={tmp_path}\nclientPort=1\nserver.255=a:1:2\nserver.2=b:1:2\nserver.3=c:1:2\n"
    assert parse(text).my_id == 255
    assert "cannot be used with extendedTypesEnabled=true" in error(text + "extendedTypesEnabled=true\n")


# ------------------------------------------------------------------ dynamicConfigFile
def test_dynamic_config_file(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("2")
    (tmp_path / "zoo.cfg.dynamic.100000000").write_text(
        "server.1=a:2888:3888:participant;2181\nserver.2=b:2888:3888:participant;127.0.0.1:2182\n"
        "server.3=c:2888:3888:participant;2183\n")
    (tmp_path / "zoo.cfg").write_text("tickTime=2000\ndataDir=data\nreconfigEnabled=true\n"
                                      "dynamicConfigFile=zoo.cfg.dynamic.100000000\n")
    cfg = load_config(tmp_path / "zoo.cfg")
    assert sorted(cfg.servers) == [1, 2, 3] and cfg.my_id == 2 and cfg.is_ensemble
    assert (cfg.client_port, cfg.client_port_address) == (2182, "127.0.0.1")
    assert cfg.raw["server.3"] == "c:2888:3888:participant;2183"


def test_dynamic_config_file_rules(tmp_path):
    (tmp_path / "dyn").write_text("server.1=a:1:2\nserver.2=b:1:2\ntickTime=5\n")
    assert "dyn:3: tickTime: a dynamic config file holds only server.N" in error(
        "dataDir=/d\nclientPort=1\ndynamicConfigFile=dyn\n", base_dir=tmp_path)
    assert "zoo.cfg:3: server.1: with dynamicConfigFile set" in error(
        "dataDir=/d\nclientPort=1\nserver.1=a:1:2\ndynamicConfigFile=dyn\n", base_dir=tmp_path)
    assert "cannot read the dynamicConfigFile" in error(
        "dataDir=/d\nclientPort=1\ndynamicConfigFile=missing\n", base_dir=tmp_path)


# ------------------------------------------------------------------ JVM flags
JVM = [
    ("-Djute.maxbuffer=4194304", "jute_maxbuffer", 4194304),
    ("-Djute.maxbuffer=0x200000", "jute_maxbuffer", 0x200000),
    ("-Dzookeeper.extendedTypesEnabled=true", "extended_types_enabled", True),
    ("-Dzookeeper.4lw.commands.whitelist=ruok,stat", "four_letter_words", {"ruok", "stat", "srvr"}),
    ("-Dzookeeper.4lw.commands.whitelist=*", "four_letter_words", ALL_4LW),
    ("-Dreadonlymode.enabled=true", "readonly_mode_enabled", True),
    ("-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=", "super_digest",
     "super:D/InIHSb7yEEbrWz8b9l71RjZJU="),
    ("-Dzookeeper.admin.enableServer=false", "admin_enable_server", False),
    ("-Dzookeeper.admin.serverPort=9876", "admin_server_port", 9876),
    ("-Dzookeeper.admin.serverAddress=127.0.0.1", "admin_server_address", "127.0.0.1"),
    ("-Dzookeeper.forceSync=no", "force_sync", False),
    ("-Dzookeeper.snapCount=1000", "snap_count", 1000),
    ("-Dzookeeper.preAllocSize=2048", "pre_alloc_size_kb", 2048),
    ("-Dzookeeper.globalOutstandingLimit=10", "global_outstanding_limit", 10),
    ("-Dznode.container.checkIntervalMs=500", "container_check_interval_ms", 500),
    ("-Dzookeeper.maxCnxns=50", "max_cnxns", 50),
]


@pytest.mark.parametrize("flag, attr, value", JVM, ids=[j[0].split("=")[0] for j in JVM])
@pytest.mark.parametrize("var", ["SERVER_JVMFLAGS", "JVMFLAGS"])
def test_jvm_flags_fill_in(var, flag, attr, value):
    cfg = parse(BASE, environ={var: f"-Xmx512m {flag} -XX:+UseG1GC"})
    assert getattr(cfg, attr) == value
    assert cfg.raw == {"dataDir": "/d", "clientPort": "2181"}  # raw is zoo.cfg only


def test_zoo_cfg_wins_over_jvm_flags_and_jvmflags_over_server_jvmflags():
    env = {"SERVER_JVMFLAGS": "-Djute.maxbuffer=100 -Dzookeeper.snapCount=10 -Dzookeeper.extendedTypesEnabled=true",
           "JVMFLAGS": "-Djute.maxbuffer=200"}
    cfg = parse(f"{BASE}snapCount=20\n", environ=env)
    assert (cfg.jute_maxbuffer, cfg.snap_count, cfg.extended_types_enabled) == (200, 20, True)


def test_jvm_flag_values_are_shell_words_and_bad_ones_name_the_variable():
    env = {"SERVER_JVMFLAGS": "'-Dzookeeper.4lw.commands.whitelist=ruok, mntr'"}
    assert parse(BASE, environ=env).four_letter_words == {"ruok", "mntr", "srvr"}
    msg = error(BASE, environ={"JVMFLAGS": "-Djute.maxbuffer=big"})
    assert msg.startswith("JVMFLAGS -Djute.maxbuffer: jute.maxbuffer=big: not a whole number")


def test_jute_maxbuffer_environment_variable_comes_last():
    assert parse(BASE, environ={"ZOOKEEPER_JUTE_MAXBUFFER": "1048576"}).jute_maxbuffer == 1048576
    env = {"ZOOKEEPER_JUTE_MAXBUFFER": "1048576", "JVMFLAGS": "-Djute.maxbuffer=2048"}
    assert parse(BASE, environ=env).jute_maxbuffer == 2048


def test_os_environ_is_the_default(monkeypatch):
    monkeypatch.setenv("SERVER_JVMFLAGS", "-Dzookeeper.extendedTypesEnabled=true")
    monkeypatch.delenv("JVMFLAGS", raising=False)
    assert parse_config(BASE).extended_types_enabled


# ------------------------------------------------------------------ render_config
def test_render_of_defaults_is_short_and_parses_back():
    cfg = parse(BASE)
    text = render_config(cfg)
    assert text.splitlines() == [
        "tickTime=2000", "initLimit=10", "syncLimit=5", "dataDir=/d", "clientPort=2181", "maxClientCnxns=60",
        "autopurge.snapRetainCount=3", "autopurge.purgeInterval=24",
        "4lw.commands.whitelist=conf,cons,dirs,envi,isro,mntr,ruok,srvr,stat,wchs"]
    assert _comparable(parse(text)) == _comparable(cfg)


def test_render_escapes_what_java_would_misread():
    cfg = parse(BASE)
    cfg.data_dir = Path("/data/zk #1\\x\tß")
    text = render_config(cfg)
    assert "dataDir=/data/zk #1\\\\x\\t\\u00df" in text
    assert parse(text).data_dir == cfg.data_dir
    cfg.data_dir = Path("/trailing ")
    with pytest.raises(ValueError, match="trims"):
        render_config(cfg)


def _comparable(cfg: ServerConfig) -> ServerConfig:
    out = copy.copy(cfg)
    out.source, out.raw, out.warnings = None, {}, []
    return out


HOSTS = st.sampled_from(["zk1", "zk-2.example.com", "10.0.0.7", "127.0.0.1", "::1", "2001:db8::5", "0.0.0.0"])
PORTS = st.integers(1, 65535)
PATH_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list("\\#=:! \t\n")),
                    min_size=1, max_size=20).map(Path).filter(lambda p: str(p) == java_trim(str(p)))
DIGESTS = st.binary(min_size=20, max_size=20).map(lambda b: "super:" + base64.b64encode(b).decode())
_MYID_DIR = Path(tempfile.mkdtemp(prefix="zkops-config-test-"))


@st.composite
def configs(draw) -> ServerConfig:
    """Any valid, already-normalized ServerConfig (servers or not)."""
    tick = draw(st.integers(1, 100000))
    readonly = draw(st.booleans())
    words = draw(st.sets(st.sampled_from(sorted(ALL_4LW)))) | {"srvr"} | ({"isro"} if readonly else set())
    if draw(st.booleans()):
        lo, hi = sorted(draw(st.lists(st.integers(0, 10**6), min_size=2, max_size=2)))
    else:
        lo, hi = 2 * tick, 20 * tick
    cfg = ServerConfig(
        source=None, data_dir=draw(PATH_TEXT), data_log_dir=draw(PATH_TEXT), tick_time=tick,
        init_limit=draw(st.integers(1, 100)), sync_limit=draw(st.integers(1, 100)),
        client_port=draw(PORTS), client_port_address=draw(HOSTS),
        secure_client_port=draw(st.none() | PORTS), max_client_cnxns=draw(st.integers(0, 10**4)),
        min_session_timeout=lo, max_session_timeout=hi, snap_count=draw(st.integers(2, 2**31 - 1)),
        autopurge_snap_retain_count=draw(st.integers(3, 1000)), autopurge_purge_interval=draw(st.integers(0, 10**4)),
        four_letter_words=frozenset(words), extended_types_enabled=draw(st.booleans()),
        jute_maxbuffer=draw(st.integers(1, 2**31 - 1)), force_sync=draw(st.booleans()),
        pre_alloc_size_kb=draw(st.integers(1, 2**20)), global_outstanding_limit=draw(st.integers(1, 10**6)),
        container_check_interval_ms=draw(st.integers(1, 10**7)), peer_type=draw(st.sampled_from(
            ["participant", "observer"])), standalone_enabled=draw(st.booleans()),
        reconfig_enabled=draw(st.booleans()), readonly_mode_enabled=readonly,
        local_sessions_enabled=draw(st.booleans()), local_sessions_upgrading_enabled=draw(st.booleans()),
        super_digest=draw(st.none() | DIGESTS), admin_enable_server=draw(st.booleans()),
        admin_server_address=draw(HOSTS), admin_server_port=draw(PORTS), metrics_port=draw(st.none() | PORTS),
        max_cnxns=draw(st.integers(0, 10**6)),
    )
    if draw(st.booleans()):  # an ensemble member
        sids = draw(st.lists(st.integers(0, 254), min_size=2, max_size=7, unique=True))
        n_obs = draw(st.integers(0, len(sids) - 2))
        for i, sid in enumerate(sids):
            q, e = draw(st.lists(PORTS, min_size=2, max_size=2, unique=True))
            has_client = draw(st.booleans())
            cfg.servers[sid] = PeerSpec(sid, draw(HOSTS), q, e, "observer" if i < n_obs else "participant",
                                        draw(st.none() | HOSTS) if has_client else None,
                                        draw(PORTS) if has_client else None)
        cfg.data_dir = cfg.data_log_dir = _MYID_DIR
        cfg.my_id = draw(st.sampled_from(sids))
        me = cfg.servers[cfg.my_id]
        cfg.peer_type = me.role
        if me.client_port is not None:
            cfg.client_port = me.client_port
        if me.client_host is not None:
            cfg.client_port_address = me.client_host
    return cfg


@given(cfg=configs())
@settings(max_examples=300)
def test_render_then_parse_round_trips(cfg):
    if cfg.my_id is not None:
        (_MYID_DIR / "myid").write_text(f"{cfg.my_id}\n")
    text = render_config(cfg)
    again = parse(text)
    assert _comparable(again) == _comparable(cfg)
    assert render_config(again) == text


# ------------------------------------------------------------------ against Apache ZooKeeper's own parser
PROPS_DUMP = r"""
import java.io.*;
import java.util.*;
public class PropsDump {
    static String hex(String s) {
        StringBuilder b = new StringBuilder("x");
        for (char c : s.toCharArray()) b.append(String.format("%04x", (int) c));
        return b.toString();
    }
    public static void main(String[] args) throws Exception {
        for (String f : args) {
            System.out.println("FILE " + f);
            Properties p = new Properties();
            try (InputStream in = new FileInputStream(f)) { p.load(in); }
              catch (IllegalArgumentException e) { System.out.println("ERROR"); continue; }
            Set<String> trimmed = new HashSet<>();
            for (String k : p.stringPropertyNames()) trimmed.add(k.trim());
            if (trimmed.size() != p.size()) { System.out.println("AMBIGUOUS"); continue; }
            for (String k : new TreeSet<>(p.stringPropertyNames()))
                System.out.println("E " + hex(k.trim()) + " " + hex(p.getProperty(k).trim()));
        }
    }
}
"""


def _unhex(s: str) -> str:
    units = "".join(chr(int(s[i:i + 4], 16)) for i in range(1, len(s), 4))  # UTF-16 code units
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@pytest.mark.reference
def test_properties_syntax_matches_java(tmp_path):
    """Random texts full of separators, escapes, comments and continuations: java.util.Properties
    and read_properties see the same keys and values."""
    from tests.support import refzk

    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    rnd = random.Random(20261124)
    pieces = ["a", "b", "key", "x.y", "=", ":", " ", "\t", "\f", "\\", "\\\\", "#", "!", "\\n", "\\t", "\\u0041",
              "\\u00e9", "\\=", "\\:", "\\ ", "\n", "\r\n", "\r", "\\\n", "\\\r\n", "1", "é", "\\u00", "\\ud83d\\ude00"]
    files = []
    for i in range(1000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 40)))
        path = tmp_path / f"p{i}.properties"
        path.write_bytes(text.encode("latin-1"))
        files.append((path, text))
    (tmp_path / "PropsDump.java").write_text(PROPS_DUMP)
    out = subprocess.run(["java", str(tmp_path / "PropsDump.java"), *(str(p) for p, _ in files)],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    java: dict[str, dict[str, str] | None] = {}
    current = ""
    for line in out.splitlines():
        if line.startswith("FILE "):
            current = line[5:]
            java[current] = {}
        elif line in ("ERROR", "AMBIGUOUS"):  # AMBIGUOUS: keys equal only once trimmed; order decides
            java[current] = None if line == "ERROR" else {"?": "?"}
        else:
            _, k, v = line.split(" ")
            java[current][_unhex(k)] = _unhex(v)  # type: ignore[index]
    compared = 0
    for path, text in files:
        if java[str(path)] == {"?": "?"}:
            continue
        try:
            ours: dict[str, str] | None = {k: v for _, k, v in read_properties(text)}
        except ConfigError:
            ours = None
        assert ours == java[str(path)], repr(text)
        compared += 1
    assert compared > 900


QPC_DUMP = r"""
import org.apache.zookeeper.server.quorum.QuorumPeerConfig;
import org.apache.zookeeper.server.quorum.QuorumPeer.QuorumServer;
import java.util.*;
public class QpcDump {
    public static void main(String[] args) throws Exception {
        for (String f : args) {
            System.out.println("FILE " + f);
            QuorumPeerConfig.setStandaloneEnabled(true);
            QuorumPeerConfig c = new QuorumPeerConfig();
            try { c.parse(f); } catch (Exception e) { System.out.println("ERROR"); continue; }
            System.out.println("tick_time=" + c.getTickTime());
            System.out.println("init_limit=" + c.getInitLimit());
            System.out.println("sync_limit=" + c.getSyncLimit());
            System.out.println("data_dir=" + c.getDataDir());
            System.out.println("data_log_dir=" + c.getDataLogDir());
            System.out.println("client_port=" + c.getClientPortAddress().getPort());
            System.out.println("max_client_cnxns=" + c.getMaxClientCnxns());
            System.out.println("min_session_timeout=" + c.getMinSessionTimeout());
            System.out.println("max_session_timeout=" + c.getMaxSessionTimeout());
            System.out.println("autopurge_snap_retain_count=" + c.getSnapRetainCount());
            System.out.println("autopurge_purge_interval=" + c.getPurgeInterval());
            System.out.println("is_ensemble=" + c.isDistributed());
            System.out.println("local_sessions_enabled=" + c.areLocalSessionsEnabled());
            if (c.isDistributed()) {
                System.out.println("my_id=" + c.getServerId());
                System.out.println("peer_type=" + c.getPeerType().toString().toLowerCase());
                for (QuorumServer s : new TreeMap<>(c.getServers()).values())
                    System.out.println("server." + s.id + "=" + s.addr.getOne().getPort() + ":"
                        + s.electionAddr.getOne().getPort() + ":" + s.type.toString().toLowerCase()
                        + ";" + (s.clientAddr == null ? "-" : String.valueOf(s.clientAddr.getPort())));
            }
        }
    }
}
"""


def _ours_as_java_prints(cfg: ServerConfig) -> dict[str, str]:
    out = {a: str(getattr(cfg, a)) for a in (
        "tick_time", "init_limit", "sync_limit", "data_dir", "data_log_dir", "client_port", "max_client_cnxns",
        "min_session_timeout", "max_session_timeout", "autopurge_snap_retain_count")}
    out["autopurge_purge_interval"] = str(cfg.autopurge_purge_interval)
    out["is_ensemble"] = str(cfg.is_ensemble).lower()
    out["local_sessions_enabled"] = str(cfg.local_sessions_enabled).lower()
    if cfg.is_ensemble:
        out["my_id"] = str(cfg.my_id)
        out["peer_type"] = cfg.peer_type
        for sid, p in cfg.servers.items():
            client = p.client_port if p.client_port is not None else (cfg.client_port if sid == cfg.my_id else "-")
            out[f"server.{sid}"] = f"{p.quorum_port}:{p.election_port}:{p.role};{client}"
    return out


@pytest.mark.reference
def test_apache_quorum_peer_config_reads_our_configs_the_same(tmp_path):
    """QuorumPeerConfig (ZooKeeper 3.8's own parser) on configs we render and on hand-written ones:
    same values, and it rejects what we reject (where we are not deliberately stricter)."""
    from tests.support import refzk

    if not refzk.available():
        pytest.fail("Apache ZooKeeper is not installed: run scripts/install-test-deps")
    data = tmp_path / "data"
    data.mkdir()
    (data / "myid").write_text("2")
    servers = "server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889;2182\nserver.3=127.0.0.1:2890:3890\n"
    texts = {
        "minimal": f"dataDir={data}\nclientPort=2181\n",
        "tuned": f"dataDir={data}\ndataLogDir={tmp_path}/log\nclientPort=2181\ntickTime=3000\nminSessionTimeout=-1\n"
                 "maxClientCnxns=0\nautopurge.snapRetainCount=1\nautopurge.purgeInterval=0\nlocalSessionsEnabled=true\n",
        "separators": f"dataDir : {data}\nclientPort 2181\n  # comment\n! comment\ntickTime=\\\n  2500\n",
        "ensemble": f"dataDir={data}\nclientPort=2182\ninitLimit=5\nsyncLimit=2\n{servers}",
        "observer": f"dataDir={data}\nclientPort=2182\n{servers}server.4=127.0.0.1:2891:3891:observer\n",
        "client on line": f"dataDir={data}\n{servers}",
        "one server line": f"dataDir={data}\nclientPort=2181\nserver.2=127.0.0.1:2888:3888\n",
        "err min > max": f"dataDir={data}\nclientPort=2181\nminSessionTimeout=5000\nmaxSessionTimeout=10\n",
        "err tick": f"dataDir={data}\nclientPort=2181\ntickTime=x\n",
        "err no dataDir": "clientPort=2181\n",
        "err same ports": f"dataDir={data}\nclientPort=2181\nserver.1=h:1:1\nserver.2=h:2:3\n",
        "err observers only": f"dataDir={data}\nclientPort=2181\nserver.1=h:1:2:observer\n",
        "err bad role": f"dataDir={data}\nclientPort=2181\nserver.1=h:1:2:boss\nserver.2=h:3:4\n",
        "err peerType": f"dataDir={data}\nclientPort=2181\npeerType=leader\n",
        "err electionAlg": f"dataDir={data}\nclientPort=2181\nelectionAlg=1\n",
        "err bool": f"dataDir={data}\nclientPort=2181\nstandaloneEnabled=yes\n",
        "err port conflict": f"dataDir={data}\nclientPort=2000\n{servers}",
    }
    # our defaults differ from QuorumPeerConfig's on purpose (see docs/configuration.md): pin them
    pin = "tickTime=2000\ninitLimit=10\nsyncLimit=5\nautopurge.purgeInterval=24\n"
    texts = {name: pin + text for name, text in texts.items()}
    texts["defaults"] = f"dataDir={data}\nclientPort=2181\n"
    rng = random.Random(7)
    for i in range(20):  # and some rendered ones (ZooKeeper wants its limits >= 1 and real paths)
        tick = rng.randint(1, 5000)
        ensemble = rng.random() < 0.5
        texts[f"rendered {i}"] = render_config(parse(
            f"dataDir={data}\nclientPort={2182 if ensemble else rng.randint(1, 65535)}\ntickTime={tick}\n"
            f"initLimit={rng.randint(1, 50)}\nsyncLimit={rng.randint(1, 50)}\nmaxClientCnxns={rng.randint(0, 999)}\n"
            f"autopurge.snapRetainCount={rng.randint(3, 30)}\nautopurge.purgeInterval={rng.randint(0, 99)}\n"
            + (servers if ensemble else "")))
    paths = {}
    for i, (name, text) in enumerate(texts.items()):
        p = tmp_path / f"c{i}.cfg"
        p.write_text(text)
        paths[str(p)] = name
    (tmp_path / "QpcDump.java").write_text(QPC_DUMP)
    res = subprocess.run(["java", "-cp", refzk.classpath(), str(tmp_path / "QpcDump.java"), *paths],
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-3000:]
    java: dict[str, dict[str, str] | None] = {}
    current = ""
    for line in res.stdout.splitlines():
        if line.startswith("FILE "):
            current = line[5:]
            java[current] = {}
        elif line == "ERROR":
            java[current] = None
        elif "=" in line and current:
            k, _, v = line.partition("=")
            java[current][k] = v  # type: ignore[index]
    for path, name in paths.items():
        try:
            ours: dict[str, str] | None = _ours_as_java_prints(parse_config(Path(path).read_text(), path,
                                                                            environ={}))
        except ConfigError:
            ours = None
        if name == "defaults":
            assert ours is not None and java[path] is not None
            differ = {k: (ours[k], java[path][k]) for k in ours if ours[k] != java[path][k]}  # type: ignore[index]
            assert differ == {"tick_time": ("2000", "3000"), "init_limit": ("10", "0"), "sync_limit": ("5", "0"),
                              "min_session_timeout": ("4000", "6000"), "max_session_timeout": ("40000", "60000"),
                              "autopurge_purge_interval": ("24", "0")}
            continue
        assert ours == java[path], name


def test_digest_enabled_by_default_and_from_the_jvm_flags():
    assert parse(BASE).digest_enabled is True
    assert parse(BASE, environ={"SERVER_JVMFLAGS": "-Dzookeeper.digest.enabled=false"}).digest_enabled is False
