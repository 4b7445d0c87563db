"""Wire formats: event decoding (JSON/Avro), alert encoding, capture lines."""
