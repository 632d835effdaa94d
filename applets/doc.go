// Package applets defines the steps a call flow is made of: the small Call
// interface every transport implements, the applet registry, and one file
// per applet that decodes its parameters at load time and runs against a Call.
package applets
