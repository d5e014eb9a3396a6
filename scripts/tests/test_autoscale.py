"""The autoscaler's policy: out after a sustained load, in after a longer quiet, within MIN and MAX, and no more
replicas once the last one added did not help."""

from autoscale import Decision, Policy, Sample


def run(
    policy: Policy, samples: list[tuple[float, float, float, float]], replicas: int
) -> list[tuple[float, int, str]]:
    """Feeds (at, saturation, rate, p99) samples, scaling as decided; the decisions, as (at, replicas, why)."""
    decided = []
    for at, saturation, rate, p99 in samples:
        decision = policy.decide(Sample(at, saturation, rate, p99), replicas)
        if decision is not None:
            decided.append((at, decision.replicas, decision.why))
            replicas = decision.replicas
    return decided


def steady(start: float, end: float, saturation: float, rate: float = 10.0, p99: float = 1.0, every: float = 5.0):
    return [(start + n * every, saturation, rate, p99) for n in range(int((end - start) / every))]


def test_a_load_must_last_out_after_seconds_before_a_replica_is_added():
    policy = Policy(minimum=1, maximum=4)
    assert run(policy, steady(0, 30, 0.95), replicas=1) == []  # 0 to 25 s: not yet
    assert [(at, replicas) for at, replicas, _ in run(policy, steady(30, 35, 0.95), replicas=1)] == [(30, 2)]


def test_a_spike_shorter_than_out_after_adds_nothing():
    policy = Policy(minimum=1, maximum=4)
    samples = steady(0, 20, 0.95) + steady(20, 25, 0.5) + steady(25, 50, 0.95)
    assert run(policy, samples, replicas=1) == []


def test_each_replica_that_helps_is_followed_by_another_while_the_load_lasts_up_to_max():
    policy = Policy(minimum=1, maximum=3)
    # Each replica lifts the rate a third: it helped. Saturation stays high: the load is more than they serve.
    decided, replicas = [], 1
    for n in range(60):
        at = n * 5.0
        sample = Sample(at, 0.95, 10.0 * replicas, 1.0)
        decision = policy.decide(sample, replicas)
        if decision is not None:
            decided.append((at, decision.replicas, decision.why))
            replicas = decision.replicas
    assert [replicas for _, replicas, _ in decided] == [2, 3, 3]
    assert "MAX=3" in decided[-1][2]


def test_a_replica_that_did_not_help_stops_the_adding_and_says_so():
    policy = Policy(minimum=1, maximum=4)
    decided = run(policy, steady(0, 200, 0.95, rate=10.0, p99=1.0), replicas=1)
    assert [replicas for _, replicas, _ in decided] == [2, 2]  # out once, then held: rate and p99 did not move
    assert decided[1][0] - decided[0][0] >= policy.settle
    assert "replica 2 did not help" in decided[1][2]


def test_a_quiet_longer_than_in_after_removes_one_replica_at_a_time_down_to_min():
    policy = Policy(minimum=1, maximum=4)
    decided = run(policy, steady(0, 300, 0.05), replicas=3)
    assert [(at, replicas) for at, replicas, _ in decided] == [(90, 2), (185, 1)]


def test_after_a_scale_in_a_new_load_may_add_replicas_again():
    policy = Policy(minimum=1, maximum=4)
    run(policy, steady(0, 200, 0.95), replicas=1)  # held at 2: the second did not help
    assert policy.ceiling == 1
    run(policy, steady(200, 300, 0.05), replicas=2)
    assert policy.ceiling is None


def test_no_figures_no_decision_and_replicas_outside_the_bounds_are_brought_in():
    policy = Policy(minimum=2, maximum=3)
    assert policy.decide(Sample(0, None, None, None), 2) is None
    assert policy.decide(Sample(0, None, None, None), 1) == Decision(2, "1 replica(s) is outside MIN=2 MAX=3")
    assert policy.decide(Sample(0, 0.5, 1, 1), 5) == Decision(3, "5 replica(s) is outside MIN=2 MAX=3")


def test_a_load_that_ended_before_the_new_replica_was_judged_says_nothing_of_it():
    policy = Policy(minimum=1, maximum=4)
    decided = run(policy, steady(0, 40, 0.95) + steady(40, 100, 0.05, rate=0.5), replicas=1)
    assert [replicas for _, replicas, _ in decided] == [2]
    assert policy.ceiling is None
