// Package agi is callflow's FastAGI transport: a TCP server that Asterisk's
// AGI(agi://host:4573/...) connects to, one session per call, each handed to a
// Handler as a *Call that implements applets.Call with AGI commands.
//
// # Why an own reader instead of github.com/CyCoreSystems/agi
//
// The protocol is small (a line out, a line back, plus an unsolicited
// "HANGUP" line), and v0.6.4 of that package gets the parts that matter to a
// call flow wrong: every command makes a fresh bufio.Scanner over the
// connection, so bytes it reads ahead (an early async HANGUP, say) are lost
// with it; STREAM FILE yields "endpos=N" instead of the pressed key; RECORD
// FILE reports nothing on hang-up; EXEC and SET VARIABLE send their
// arguments unquoted; multi-line 520 replies are not read to their end. Its
// Command has no context and no timeout either. Wrapping it would mean
// re-implementing most of it, so this package keeps one bufio.Reader per
// connection and one reader goroutine that splits what Asterisk sends into
// async HANGUP lines (which cancel the call's context at once) and command
// replies (which go to the one command in flight). Lines are bounded to
// 64 KiB and anything that is neither ends the session with an error.
// Nothing of that package is used, so it is not a dependency either.
//
// # Behaviour worth knowing
//
//   - Asterisk reads DTMF only while a command listens (STREAM FILE with
//     escape digits, WAIT FOR DIGIT, RECORD FILE); keys pressed between
//     commands or during a prompt without barge-in are dropped by Asterisk.
//     The type-ahead buffer therefore holds only keys this side received and
//     did not consume: a barge-in key returned by Play is also kept for the
//     next Gather (a greeting with barge_in hands the key to the menu).
//     Dial and Record clear it.
//   - STREAM FILE answers result=-1 both when the caller hangs up and when
//     the file cannot be opened. A CHANNEL STATUS probe tells them apart: a
//     hung-up channel is followed by HANGUP and 511 (dead channel). A missing
//     prompt is logged and skipped, like ARI's failed playback.
//   - An AGI command cannot be interrupted. If the handler's context ends for
//     another reason than a hang-up while a command runs, the session is
//     closed and Asterisk goes on with the dialplan after AGI().
//   - Dial rings with the g option, so the caller stays in the flow when the
//     agent hangs up first (on.answered). Without an accept key the whisper
//     is Dial's A(file): one sound. With DialSpec.Accept the dial needs the
//     two contexts of asterisk/extensions.conf. Dial's U() runs a subroutine
//     on the first agent to answer only (app_dial has hung the others up by
//     then), so each target is rung as Local/N@callflow-whisper-leg, which
//     dials that agent with U(callflow-whisper-accept^...): the agent hears
//     the whole whisper (sounds and recordings) and has 10s to press a key,
//     as over ARI. An accept key bridges; another key or none sets
//     GOSUB_RESULT=ABORT, which hangs the agent up. app_dial then leaves
//     DIALSTATUS at ANSWER for the channel that ran that Dial, the leg: the
//     leg just ends, and the caller's Dial never sees it answer. So the
//     first agent to accept wins while the others ring on, and a dial nobody
//     accepted is no_answer: the flow goes on. Unlike ARI, an agent still
//     hearing the whisper when another accepts is hung up only after the
//     wait. Before such a dial the contexts are checked with
//     DIALPLAN_EXISTS; if one is missing the dial is refused (failed),
//     logged, and Server.Health reports it, because Dial bridges an agent
//     unasked when its U() subroutine does not exist.
//   - Hangup runs the Hangup() application with the cause (16 normal
//     clearing unless the flow gives one: busy 17, congestion 34...): AGI's
//     own HANGUP sets no cause, and Asterisk would record 0 (unknown) in
//     CDRs where ARI gives 16.
//   - Asterisk reads at most 2047 bytes per command line; longer commands
//     are refused here rather than split by Asterisk into two commands.
package agi
