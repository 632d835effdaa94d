// Package mailer sends the flows' email notifications (voicemail attached)
// from a bounded queue, in the background, so a call never waits on a mail
// server; failed deliveries are retried with back-off and can survive a restart.
package mailer
