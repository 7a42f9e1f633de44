package tokenledger

// WithoutDecoderMarks returns e without the decoder's unexported marks, so
// that a test can compare a decoded event with a literal.
func WithoutDecoderMarks(e Event) Event {
	e.alone, e.zeroTimeSent = false, false
	return e
}
