"""Errors carry the field at fault; the library names the field, the command line spells it as a flag."""

import pickle

import pytest

from albench.api.errors import AlbenchError, DataError
from albench.cli.fields import FLAGS, message
from albench.engine.protocol import RunSpec


def test_field_rendered_by_the_front_end():
    err = AlbenchError("{field} must be a positive integer, got 0.", field="rounds")
    assert str(err) == "rounds must be a positive integer, got 0." and err.field == "rounds"
    assert message(err) == "--rounds must be a positive integer, got 0."
    assert err.render({}) == str(err)
    plain = AlbenchError("no field here")
    assert plain.field is None and message(plain) == "no field here"


def test_field_survives_pickling_to_a_launcher():
    err = pickle.loads(pickle.dumps(DataError("cannot write {field}", field="results_dir")))
    assert type(err) is DataError and err.field == "results_dir" and message(err) == "cannot write --results-dir"


@pytest.mark.parametrize(
    "spec, field",
    [
        (RunSpec("random", "coop", "digits", rounds=0), "rounds"),
        (RunSpec("random", "coop", "digits", round_budget=0), "round_budget"),
    ],
)
def test_library_messages_name_fields_not_flags(spec, field):
    with pytest.raises(AlbenchError) as info:
        spec.validate()
    assert info.value.field == field and "--" not in str(info.value)
    assert message(info.value).startswith(FLAGS[field] + " must be a positive integer")
