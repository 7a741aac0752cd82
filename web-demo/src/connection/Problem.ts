/** Why the widget is not connected, in words for the person in front of it. */
export type Problem = {
  text: string;
  /** Retrying cannot help (an origin not allowed, a key needed): the widget stops until asked again. */
  final: boolean;
};
