package tokenledger

// Batch is events that have passed every rule of docs/api.md: each valid,
// with an ID and a UTC Timestamp. Only Service.ValidateAndPrice (events
// from a client) and StoredBatch (events read back from a file this
// program wrote) make one, so a Store takes a Batch and checks nothing
// again.
type Batch struct {
	events []Event
}

// Events returns the batch's events. The caller must not change them.
func (b Batch) Events() []Event { return b.events }

// Len returns how many events the batch holds.
func (b Batch) Len() int { return len(b.events) }

// Slice returns events [i, j) of the batch, itself a Batch.
func (b Batch) Slice(i, j int) Batch { return Batch{events: b.events[i:j]} }

// StoredBatch checks events read back from durable storage (the usage
// file, the spool, a file being migrated) with CheckStored and returns
// them as a Batch, timestamps in UTC. It changes the slice in place. The
// first broken rule is returned as a *ValidationError with Index set.
func StoredBatch(events []Event) (Batch, error) {
	for i := range events {
		if err := CheckStored(&events[i]); err != nil {
			return Batch{}, atIndex(err, i)
		}
	}
	return Batch{events: events}, nil
}

// CheckStored checks an event read back from durable storage: the rules
// of Validate, an ID and a Timestamp (years 1 to 9999), and a known price
// source. It sets the Timestamp to UTC. The clock's rules (the retention
// window, the future limit) are not checked: a stored event was inside
// the window when it was accepted, and stores drop expired days on their
// own.
func CheckStored(e *Event) error {
	if err := e.Validate(); err != nil {
		return err
	}
	if e.ID == "" {
		return invalid("id", "is required in stored events")
	}
	if e.Timestamp.IsZero() {
		return invalid("timestamp", "is required in stored events")
	}
	e.Timestamp = e.Timestamp.UTC()
	if y := e.Timestamp.Year(); y < 1 || y > 9999 {
		return invalid("timestamp", "must be between the years 1 and 9999")
	}
	if int(e.Pricing) >= len(priceSourceNames) {
		return invalid("pricing", "must be client, table or unpriced")
	}
	return nil
}

// JoinBatches returns the events of bs in order as one Batch, copied into
// one new slice (one allocation, whatever the number of parts).
func JoinBatches(bs []Batch) Batch {
	n := 0
	for _, b := range bs {
		n += len(b.events)
	}
	events := make([]Event, 0, n)
	for _, b := range bs {
		events = append(events, b.events...)
	}
	return Batch{events: events}
}
