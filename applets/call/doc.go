// Package call is the one way a call enters callflow and the one view of
// it that applets get: the Call interface and its specs, the Inbound a
// transport hands over, and the Handler that takes it. ari and agi import
// this package alone; flows.Dispatcher is the Handler.
package call
