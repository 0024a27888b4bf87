"""Run the mq-bridge route of mq_bridge_route.yaml (under mq-bridge's own Python environment).

Usage: python mq_bridge_peer.py ROUTE_YAML MQTT_URL DATABASE_URL CLIENT_ID METERS_JSON
METERS_JSON maps SenML base names (device ids) to meter ids, as read from the meters table.
"""

import json
import logging
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import mq_bridge

route_file, mqtt_url, database_url, client_id, meters_file = sys.argv[1:6]
meter_ids = json.loads(Path(meters_file).read_text())
text = (
    Path(route_file)
    .read_text()
    .replace("${MQTT_URL}", mqtt_url.replace("mqtt://", "tcp://"))
    .replace("${DATABASE_URL}", database_url)
    .replace("${CLIENT_ID}", client_id)
)


def to_row(message: mq_bridge.Message) -> mq_bridge.Message:
    record = message.json()[0]
    return message.with_json({
        "meter_id": meter_ids[record["bn"].rstrip(":")],
        "ts": datetime.fromtimestamp(record["t"], UTC).isoformat(),
        "value": record["v"],
    })  # fmt: skip


logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
mq_bridge.init_logging(os.environ.get("MQ_BRIDGE_LOG_LEVEL", "info"))
signal.signal(signal.SIGTERM, lambda *_: mq_bridge.request_shutdown())
mq_bridge.Route.from_str(text).with_handler(to_row).run()
