"""Every line a container writes is one JSON object, and a failed step is an ERROR record that says why."""

import json

from servicekit.loglines import LogLines

STAMP = {"logger": "output", "service": "service1", "instance": "a371c037199e"}


def records(*lines: bytes) -> list[dict]:
    converted = LogLines(STAMP)
    return [json.loads(converted.as_json_line(line)) for line in lines]


def test_a_json_line_passes_as_it_is_and_any_other_becomes_an_info_record():
    passed, made = records(b'{"level": "WARNING", "message": "kept"}\n', b"*** Starting uWSGI 2.0.30 ***\n")
    assert passed == {"level": "WARNING", "message": "kept"}
    assert (made["level"], made["message"], made["service"]) == ("INFO", "*** Starting uWSGI 2.0.30 ***", "service1")


def test_a_failed_step_is_an_error_record_with_the_last_line_it_printed():
    *_, failed = records(
        b"*** Operational MODE: preforking+threaded ***\n",
        b"invalid cheaper value: must be lower than processes\n",
        b"servicekit: failed: uWSGI exited with status 1\n",
    )
    assert failed["level"] == "ERROR"
    assert failed["message"] == "uWSGI exited with status 1: invalid cheaper value: must be lower than processes"
