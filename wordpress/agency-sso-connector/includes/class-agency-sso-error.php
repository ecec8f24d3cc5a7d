<?php
/**
 * The one exception type of the Agency SSO Connector.
 *
 * This file declares a class only and uses no WordPress function, so it loads
 * in plain PHP (the unit tests run without WordPress).
 *
 * @package Agency_SSO_Connector
 */

/**
 * A refusal with a stable, machine-readable code and a plain English message.
 *
 * The code (for example `token_expired`) is meant for logs, for the answer
 * sent back to the dashboard and for tests; the message is meant for the
 * person at the browser and never contains the token or any value read from
 * it.
 */
class Agency_SSO_Error extends Exception {

	/**
	 * Stable error code, e.g. `bad_signature`. Treat as read-only.
	 *
	 * @var string
	 */
	public string $error_code;

	/**
	 * Creates the error.
	 *
	 * @param string $error_code Stable machine-readable code.
	 * @param string $message    Plain English explanation a site user can read.
	 */
	public function __construct( string $error_code, string $message ) {
		parent::__construct( $message );
		$this->error_code = $error_code;
	}

	/**
	 * Returns the stable error code.
	 *
	 * @return string
	 */
	public function get_error_code(): string {
		return $this->error_code;
	}
}
