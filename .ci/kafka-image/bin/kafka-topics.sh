#!/bin/sh
exec /opt/kafka/bin/kafka-tool TopicCommand "$@"
