package broker

// offsetsTopic is Kafka's internal topic of committed offsets. Spool keeps
// committed offsets in the group coordinator's journal instead (see
// docs/DESIGN.md, "Decisions"), but creates the topic, empty, as Kafka
// creates it at the first FindCoordinator: clients and tools recognise
// internal topics by Metadata's IsInternal and leave them out of regex
// subscriptions and topic lists, and some wait for this one to exist. Its
// single partition holds no records: produce to it is refused
// (INVALID_TOPIC_EXCEPTION, as Kafka refuses clients), and so is deleting
// it.
const offsetsTopic = "__consumer_offsets"

// isInternalTopic reports Kafka's internal topic names.
func isInternalTopic(name string) bool {
	return name == offsetsTopic || name == "__transaction_state"
}

// ensureOffsetsTopic creates __consumer_offsets if it does not exist yet.
// A failure is logged and retried at the next call: groups work without it.
func (b *Broker) ensureOffsetsTopic() {
	if _, ok := b.topics().byName[offsetsTopic]; ok {
		return
	}
	cfg, err := b.buildTopicConfig(nil)
	if err == nil {
		_, err = b.createTopic(offsetsTopic, 1, cfg)
	}
	switch {
	case err == nil:
		b.cfg.Logger.Info("broker: created internal topic", "topic", offsetsTopic)
	case err != errTopicExists:
		b.cfg.Logger.Warn("broker: create internal topic", "topic", offsetsTopic, "err", err)
	}
}
