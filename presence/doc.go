// Package presence knows which agents can take a call now: the state they
// chose (available, paused, logged out), the calls callflow placed to them,
// Asterisk device states for the calls it did not, and wrap-up after a call.
// It resolves "team:NAME" and "agent:NAME" dial targets for the applets.
package presence
