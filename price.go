package tokenledger

import "fmt"

// PriceSource says where an event's cost came from. The zero value means
// not known: the event was recorded before tokenledger priced events, and
// stores count it under no source.
type PriceSource uint8

// The sources of an event's cost.
const (
	// PriceUnknown is an event recorded before pricing existed.
	PriceUnknown PriceSource = iota
	// PricedByClient is a cost the client sent (costUsd), which wins over
	// the table: it knows its contract prices.
	PricedByClient
	// PricedByTable is a cost computed from the price table.
	PricedByTable
	// Unpriced is an event the table could not price (an unknown model, or
	// tokens of a kind the model has no rate for): its cost is 0.
	Unpriced
)

var priceSourceNames = [...]string{PriceUnknown: "", PricedByClient: "client", PricedByTable: "table", Unpriced: "unpriced"}

// String returns the source's name in the API: "client", "table",
// "unpriced", or "" when not known.
func (p PriceSource) String() string {
	if int(p) < len(priceSourceNames) {
		return priceSourceNames[p]
	}
	return fmt.Sprintf("PriceSource(%d)", uint8(p))
}

// MarshalText encodes the source by its name.
func (p PriceSource) MarshalText() ([]byte, error) {
	if int(p) >= len(priceSourceNames) {
		return nil, fmt.Errorf("price source %d is not one tokenledger knows", uint8(p))
	}
	return []byte(priceSourceNames[p]), nil
}

// UnmarshalText decodes a source name; anything else is an error.
func (p *PriceSource) UnmarshalText(b []byte) error {
	v, ok := ParsePriceSource(string(b))
	if !ok {
		return fmt.Errorf("pricing must be client, table or unpriced, not %q", b)
	}
	*p = v
	return nil
}

// ParsePriceSource returns the source named s ("" is PriceUnknown).
func ParsePriceSource(s string) (PriceSource, bool) {
	for i, n := range priceSourceNames {
		if n == s {
			return PriceSource(i), true
		}
	}
	return 0, false
}

// PricingCounts count requests by the source of their cost. Requests
// recorded before pricing existed are in none of them, so the three may
// sum to less than the request count.
type PricingCounts struct {
	Client   int64 `json:"client"`
	Table    int64 `json:"table"`
	Unpriced int64 `json:"unpriced"`
}

// Count adds one request priced by src; PriceUnknown adds nothing.
func (c *PricingCounts) Count(src PriceSource) {
	switch src {
	case PricedByClient:
		c.Client++
	case PricedByTable:
		c.Table++
	case Unpriced:
		c.Unpriced++
	}
}

// Add adds the counts of o to c.
func (c *PricingCounts) Add(o PricingCounts) {
	c.Client += o.Client
	c.Table += o.Table
	c.Unpriced += o.Unpriced
}

// Pricer computes an event's cost from a price table (package pricing).
type Pricer interface {
	// Price returns the cost of e's tokens and the table key that priced
	// them, or ok false when the table cannot price e. err is a
	// *ValidationError when the cost is out of the contract's range.
	Price(e *Event) (cost Nanos, key string, ok bool, err error)
}

// price sets e's cost and source: a cost the client sent is kept, anything
// else is priced by p (unpriced, at 0, when p is nil or cannot price it).
func price(e *Event, p Pricer) error {
	if e.Pricing == PricedByClient || (e.Pricing == PriceUnknown && e.Cost != 0) {
		e.Pricing = PricedByClient
		return nil
	}
	e.Cost, e.PriceKey, e.Pricing = 0, "", Unpriced
	if p == nil {
		return nil
	}
	cost, key, ok, err := p.Price(e)
	if err != nil {
		return err
	}
	if ok {
		e.Cost, e.PriceKey, e.Pricing = cost, key, PricedByTable
	}
	return nil
}
