/** Who is on a connection, decided once at the upgrade. */
export type Identity = {
  /** The API key's name; undefined when the server runs open (no keys configured). */
  keyName: string | undefined;
  /** Owner of the sessions it creates: only the same owner may reattach them. */
  ownerKey: string;
  /** Unit of fairness and rate limits: the key, or the connection when the server runs open. */
  clientKey: string;
};
