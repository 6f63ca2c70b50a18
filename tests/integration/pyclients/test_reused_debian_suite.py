"""Tests of ../python (written for Debian's confluent-kafka 2.0 / librdkafka 2.0.2) that
drive real clients and run unchanged with confluent-kafka 2.16 / librdkafka 2.16:
collected again here, so they also run under this venv's versions. Group members that
run in their own processes use this venv's interpreter too (conftest.py).

Left out: tests that only send raw requests (kwire: the client version does not
matter), and the two kafka-python tests of test_groups.py and all of
test_kafka_python.py: they pass api_version_auto_timeout_ms, which kafka-python 3.0
removed (KafkaConfigurationError "Unrecognized configs"); test_kafka_python_current.py
covers the same ground with 3.0's API."""
# flake8: noqa: F401
from test_admin import (test_create_partitions_grow_and_shrink,
                        test_create_topics_errors_and_validate_only,
                        test_delete_records_moves_log_start, test_delete_topics,
                        test_describe_and_alter_configs, test_describe_cluster,
                        test_list_offsets_and_offsets_for_times)
from test_compaction import (test_compacted_topic_refuses_keyless_records,
                             test_compaction_keeps_newest_value_per_key)
from test_confluent import (test_bulk_produce_consume_copy_and_sendfile,
                            test_sendfile_broker_fresh_produce)
from test_durability import (test_clean_restart_keeps_everything,
                             test_kill9_keeps_every_acknowledged_record)
from test_groups import (members, test_committed_offsets_survive_broker_restart,
                         test_cooperative_sticky_join_keeps_unmoved_partitions,
                         test_graceful_close_moves_partitions_at_once,
                         test_kill9_member_partitions_move_within_session_timeout,
                         test_static_member_restart_keeps_assignment_without_rebalance,
                         test_three_members_share_12_partitions_and_consume_exactly_once)
from test_idempotence import (test_librdkafka_idempotent_producer_delivers_each_record_once,
                              test_librdkafka_retries_across_kill9_store_each_record_once)
from test_long_poll import test_consumer_long_poll_delivers_promptly
from test_recreate import (test_double_underscore_names_are_ordinary_topics,
                           test_recreated_topic_has_no_old_committed_offsets,
                           test_recreated_topic_keeps_acknowledged_records_after_kill)
