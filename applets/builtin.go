package applets

// Builtin returns a registry of every applet callflow ships. Adding an
// applet is one file and one line here.
func Builtin() *Registry {
	return NewRegistry(
		GreetingDef,
		MenuDef,
		ForwardDef,
		MultiRingDef,
		VoicemailDef,
		TransferDef,
		HangupDef,
		SetDef,
		WebhookDef,
		EmailDef,
		RingInOrderDef,
		RoundRobinDef,
		ScheduleDef,
		ZipRouteDef,
		TagRouteDef,
		PassthruDef,
		SMSDef,
		BidDef,
		AgentLoginDef,
		QueueDef,
	)
}
