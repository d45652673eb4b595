import Foundation
import Testing
@testable import Host

@Suite("Reading safetensors files")
struct SafeTensorsReaderTests {
    @Test("a Hugging Face model file lists every tensor with its shape")
    func readsModelFile() throws {
        let file = try SafeTensorsFile(contentsOf: Fixtures.url("bert-tiny/model.safetensors"))
        #expect(file.names.count == 41)
        let words = try file.tensor(named: "bert.embeddings.word_embeddings.weight")
        #expect(words.shape == [8000, 32])
        #expect(file.metadata["format"] == "pt")
    }

    @Test("integer tensors read back as token ids")
    func readsIntegers() throws {
        let file = try SafeTensorsFile(contentsOf: Fixtures.url("bert-tiny/reference.safetensors"))
        let ids = try file.integers(named: "input_ids")
        #expect(ids.shape == [4, 16])
        #expect(ids.values[0] == 2) // [CLS]
    }
}
