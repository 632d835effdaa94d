// Package speech turns text into WAV files Asterisk can play (espeak-ng, then
// sox to 8 kHz 16-bit mono), cached by content so each phrase is synthesised
// once, and checks or converts uploaded WAVs to that format.
package speech
