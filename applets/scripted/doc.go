// Package scripted is a Call driven by a script instead of a phone: keys
// the caller presses, what each dial gets, how long each message is. The
// simulator and the applet tests run the real applets against it.
package scripted
