"""The one intake pipeline every lead source goes through: map → normalize → validate → dedupe → create."""
